"""scripts/compare_official.py without the official code: rule detection, patches, commit extraction.

The stand-in "official" files below are a few lines written for this test, shaped like the
lines the script looks for; they are not the official code.
"""

import subprocess
from pathlib import Path

import pytest

from scripts import compare_official as co

CORE = """class InferenceCore:
    def __init__(self, prop_net, images, num_objects, mem_freq=5):
        self.memory_thr = 20

    def do_pass(self, scores, keys, pos):
        {filter_line}
        if (abs(ti-last_ti) >= self.mem_freq) and (score > 0.8):
            keys = torch.cat([keys[:, :, :pos], keys[:, :, pos+1:]], dim=2)
            values = torch.cat([values[:, :, :pos], values[:, :, pos+1:]], dim=2)
"""
MODULES = """class Score:
    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
"""


def stand_in(folder: Path, filter_active: bool) -> Path:
    line = ("" if filter_active else "# ") + "scores = list(filter(lambda a: a != 0, scores))"
    (folder / "model").mkdir(parents=True)
    (folder / "inference_core.py").write_text(CORE.format(filter_line=line))
    (folder / "model" / "modules.py").write_text(MODULES)
    return folder


@pytest.mark.parametrize("active, expected", [(False, "all"), (True, "nonzero")])
def test_the_quality_rule_is_read_from_the_source(tmp_path, active, expected):
    settings = co.patch_official(stand_in(tmp_path, active), None, None, None, None, fix_eviction=True)
    assert settings.quality_mean == expected
    assert (settings.threshold, settings.capacity, settings.mem_freq, settings.qam_activation) == (0.8, 20, 5, "relu")
    core = (tmp_path / "inference_core.py").read_text()
    assert "keys[:, :, :pos+1], keys[:, :, pos+2:]" in core and "values[:, :, :pos+1], values[:, :, pos+2:]" in core


def test_the_zero_filter_can_be_switched(tmp_path):
    settings = co.patch_official(stand_in(tmp_path, False), None, None, None, None, False, zero_filter="on")
    assert settings.quality_mean == "nonzero" and settings.patches == ["zero filter of propagated frames off -> on"]
    assert "\n        scores = list(filter(" in (tmp_path / "inference_core.py").read_text()
    settings = co.patch_official(tmp_path, None, None, None, None, False, zero_filter="off")
    assert settings.quality_mean == "all" and "# scores = list(filter(" in (tmp_path / "inference_core.py").read_text()


def committed_stand_in(folder: Path) -> tuple[Path, list[str], str]:
    """A stand-in of the official code committed once to a new git repository: (repository, git command prefix, commit)."""
    repo = stand_in(folder, False)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    return repo, git, commit


def test_the_requested_commit_is_extracted_from_a_git_repository(tmp_path):
    repo, git, first = committed_stand_in(tmp_path / "repo")
    (repo / "inference_core.py").write_text("changed later\n")
    subprocess.run([*git, "commit", "-q", "-am", "second"], check=True)
    dest = tmp_path / "copy"
    assert co.copy_official(repo, dest, first[:7]) == first
    assert "mem_freq=5" in (dest / "inference_core.py").read_text()  # the old commit, not the checkout
    with pytest.raises(co.CompareError, match="not found"):
        co.copy_official(repo, tmp_path / "copy2", "0" * 40)


def test_random_checkpoint_qam_bias_is_calibrated_to_a_zero_share(tmp_path, capsys):
    import torch

    from scripts import make_random_checkpoint, make_synthetic

    args = ["--out", str(tmp_path / "d"), "--videos", "2", "--frames", "4", "--height", "64", "--width", "96", "--seed", "1"]
    assert make_synthetic.main(args) == 0
    out = tmp_path / "r.pth"
    calibrate = ["--qam_zero_share", "0.5", "--calibrate_davis", str(tmp_path / "d" / "2017")]
    make_random_checkpoint.main(["--out", str(out), "--config", "lite", "--qam_activation", "relu", *calibrate])
    printed = capsys.readouterr().out
    share = float(printed.split("% of object-frames score 0")[0].split()[-1])
    assert 30 <= share <= 70, printed
    bias = torch.load(out, weights_only=True)["network"]["score.fc2.bias"]
    assert f"score.fc2.bias {float(bias):.6g}" in printed


def test_a_git_archive_of_the_official_code_is_accepted_with_its_commit(tmp_path):
    repo, git, commit = committed_stand_in(tmp_path / "repo")
    archive = tmp_path / "official.tar"
    subprocess.run([*git, "archive", "--format=tar", "-o", str(archive), "HEAD", "--", "*.py"], check=True)
    assert co.copy_official(archive, tmp_path / "copy", commit[:7]) == commit
    assert "mem_freq=5" in (tmp_path / "copy" / "inference_core.py").read_text()
    with pytest.raises(co.CompareError, match=f"holds commit {commit}"):
        co.copy_official(archive, tmp_path / "copy2", "301f7bf")


def test_the_official_code_keeps_cuda_on_the_gpu_and_loses_it_on_the_cpu():
    from evaluation.official import sitecustomize

    cpu, cuda = sitecustomize("cpu"), sitecustomize("cuda")
    for text in (cpu, cuda):
        compile(text, "sitecustomize.py", "exec")  # valid Python, whatever the device
        assert "_offline_load_url" in text and "_chained_sitecustomize" in text
    assert "torch.Tensor.cuda = " in cpu and "torch.Tensor.cuda" not in cuda and "_cpu_load" not in cuda
    args = co.parse_args(["--official_repo", __file__, "--model", __file__, "--davis", ".", "--device", "cuda"])
    assert args.device == "cuda"
