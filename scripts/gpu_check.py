"""One prepared run on one GPU: the CUDA paths checked and the demonstration model trained, each stage time-boxed.

    python -m scripts.gpu_check [--out DIR] [--budget 540] [--stages env,train,eval,demo]   # on the GPU machine
    python -m scripts.gpu_check --device cpu --tiny --out DIR                                # the dry run, here

Stages (docs/GPU_CHECK.md lists their time boxes, runs and result fields):

1. ``env``: nvidia-smi, torch/CUDA versions, a one-line capability table; installs the wheels
   carried in ``.whl/`` into a private folder put on ``PYTHONPATH``; detects ``--compile``.
2. ``train``: ``train.py --stage 2`` on generated data, lite and official configurations, float32
   and ``--amp``: it/s, peak CUDA memory, the GradScaler scale, the loss; exact resume with
   ``--amp`` (N = N/2 + N/2 against a rerun of N); torchrun with one rank; a process group (NCCL).
3. ``eval``: ``eval_davis.py`` on generated 480p videos, float32 and ``--amp``: FPS, peak memory;
   the device's masks and memory decisions against the CPU's on a confident random checkpoint;
   the official code on the same device (``scripts/compare_official.py``); ``scripts/benchmark.py``.
4. ``demo``: the demonstration model trained further in the time left, exported in float16 and
   split into parts of at most 15 MiB, every minute, so that a run cut off still returns weights.

Every output goes into one folder (``$OUT`` when set, else ``--out``): ``gpu_check.json`` (every
stage's results), ``gpu_check.md`` (the same, summarised), ``gpu_check.log`` (commands and the
end of their output) and the weights' parts with their manifest (``scripts/join_parts.py`` joins
them). A stage that fails or runs out of time is recorded and the next one runs. Its modules,
one job each, are in ``scripts/gpu/``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as ``python scripts/gpu_check.py``: the repository root on the path, as ``-m`` puts it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.gpu.profiles import DEMO_FILE, FULL, LOG, RESULTS_JSON, RESULTS_MD, ROOT, STAGES, TINY  # noqa: E402
from scripts.gpu.runner import Check, run_stage, start_data  # noqa: E402
from scripts.gpu.stage_demo import stage_demo  # noqa: E402
from scripts.gpu.stage_env import stage_env  # noqa: E402
from scripts.gpu.stage_eval import stage_eval  # noqa: E402
from scripts.gpu.stage_train import stage_train  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.write_gate import RECORD_NAME, check_not_input, make_folder, protect_inputs, remove, written_by_project  # noqa: E402

SHIPPED = ROOT / "saves" / "qdmn_lite_synth.pth"
PART_BYTES = 15 * 2**20  # a file that comes back from the GPU machine is at most 16 MiB


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT") or None, help="output folder (default: $OUT)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cuda on the GPU machine; cpu for the dry run")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and 1-2 iterations: the dry run")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of env,train,eval,demo (env always runs)")
    parser.add_argument("--budget", type=int, default=None, help="seconds for the whole run (default 540; --tiny 1800)")
    parser.add_argument("--compile", action="store_true", help="pass --compile to train.py and eval_davis.py where their --help lists it")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl", help="folder of wheels to install first")
    parser.add_argument(
        "--official_repo",
        default=None,
        help="official code for the comparison (default: $QDMN_OFFICIAL_REPO, else .official/qdmn-official.tar; '' skips it)",
    )
    parser.add_argument("--demo_init", type=Path, default=SHIPPED, help="weights the demonstration model continues from")
    parser.add_argument("--part_mib", type=int, default=PART_BYTES // 2**20, help="largest part of the returned weights, in MiB")
    parser.add_argument("--work", type=Path, default=None, help="folder for data, checkpoints and logs (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error(f"--stages: unknown {unknown}; choose from {','.join(STAGES)}")
    args.stages = [s for s in STAGES if s in stages or s == "env"]
    if args.out is None:
        parser.error("--out is required when $OUT is not set")
    if args.budget is not None and args.budget < 30:
        parser.error("--budget must be at least 30 seconds")
    if not 1 <= args.part_mib <= 16:
        parser.error("--part_mib must be 1-16 (a returned file is at most 16 MiB)")
    return args


OUR_FILES = re.compile(
    rf"^({re.escape(RESULTS_JSON)}|{re.escape(RESULTS_MD)}|{re.escape(LOG)}|"
    rf"{re.escape(DEMO_FILE)}\.part\d+|{re.escape(Path(DEMO_FILE).stem)}\.json)$"
)


def prepare_out(out: Path) -> None:
    """The output folder: new, empty, or holding only this script's files (which a new run removes).

    A file is this script's when it has one of its names and the folder's write record shows
    this project wrote it, unchanged since (util/write_gate.py); anything else stops the run."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: not a folder; --out takes a folder")
    make_folder(out, "--out")
    names = sorted(p.name for p in out.iterdir() if p.name != RECORD_NAME)
    ours = [n for n in names if OUR_FILES.match(n) and written_by_project(out / n)]
    foreign = [n for n in names if n not in ours]
    if foreign:
        raise UserError(f"{out}: holds files this script did not write ({', '.join(foreign[:3])}); choose an empty --out")
    for name in ours:
        remove(out / name, "--out")


def stop_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@exit_on_user_error
def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    protect_inputs([p for p in (args.demo_init if "demo" in args.stages else None, args.wheels, args.official_repo) if p])
    if args.demo_init and "demo" in args.stages and not Path(args.demo_init).is_file():
        raise UserError(f"{args.demo_init}: weights not found; check --demo_init")
    if args.work is not None and args.work.exists() and (not args.work.is_dir() or any(args.work.iterdir())):
        raise UserError(f"{args.work}: not an empty folder; --work takes a new or empty folder")
    if args.work is not None:
        check_not_input(args.work, "--work")
    prepare_out(args.out)
    work = args.work or Path(tempfile.mkdtemp(prefix="qdmn_gpu_check_"))
    check = Check(args, TINY if args.tiny else FULL, args.out, work)
    check.log(
        f"gpu_check: device {args.device}{' (tiny)' if args.tiny else ''}, stages {','.join(args.stages)}, "
        f"budget {check.results['budget_s']} s, work {work}"
    )
    signal.signal(signal.SIGTERM, stop_on_signal)  # stop the commands started, record what was done
    try:
        jobs = start_data(check, args.stages)
        bodies = {
            "env": stage_env,
            "train": lambda c, r, d: stage_train(c, r, d, jobs),
            "eval": lambda c, r, d: stage_eval(c, r, d, jobs),
            "demo": lambda c, r, d: stage_demo(c, r, d, jobs),
        }
        for name in args.stages:
            run_stage(check, name, bodies[name])
    finally:
        check.stop_all()
        check.write_results()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    failed = [c for c, v in check.results["checks"].items() if v["passed"] is False]
    bad = [s for s, v in check.results["stages"].items() if v["status"] != "ok"]
    check.log(
        f"gpu_check done in {check.results['elapsed_s']} s: stages not ok {bad or 'none'}, checks failed {failed or 'none'}; "
        f"results in {args.out}"
    )
    return 0 if not failed and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
