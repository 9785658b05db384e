"""The modules of ``scripts/gpu_check.py``, one job each; nothing else imports them (pyproject.toml's contracts).

* ``profiles``: the run's sizes and time boxes (the GPU run's, the dry run's) and the output names;
* ``report``: ``gpu_check.md`` from the results;
* ``runner``: the run's context (:class:`~scripts.gpu.runner.Check`: deadline, results, log,
  commands in their own process groups), a stage's time box and record, the background data;
* ``stage_env``, ``stage_train``, ``stage_eval``, ``stage_demo``: the four stages (docs/GPU_CHECK.md).
"""
