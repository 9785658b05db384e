"""Agreement with the official code at HEAD where the frame-quality rule matters.

Needs a clone (or bare git directory) of yongliu20/QDMN in ``$QDMN_OFFICIAL_REPO``;
skipped otherwise. No official code is part of this repository. The case is built so
that the rules differ: a ReLU QAM that sees only the masks (``--image_gain 0``), whose
score is 0 for vanishing objects, on a video where one object is mostly lost while the
other stays. Under the official DAVIS rule at HEAD (mean over all objects) no frame
passes 0.8; under the non-zero mean (the first official version) frames 5, 10, ... do.
"""

import json
import os
from pathlib import Path

import pytest

from scripts import compare_official, make_random_checkpoint, make_synthetic

ROOT = Path(__file__).resolve().parents[1]

OFFICIAL = os.environ.get("QDMN_OFFICIAL_REPO")
pytestmark = pytest.mark.skipif(
    not OFFICIAL or not Path(OFFICIAL).expanduser().exists(), reason="set QDMN_OFFICIAL_REPO to a clone of yongliu20/QDMN"
)
# The lost-object checkpoint of docs/OFFICIAL_AGREEMENT.md, with its calibrated bias.
CHECKPOINT_ARGS = [
    "--official", "--seed", "3", "--qam_activation", "relu", "--image_gain", "0", "--mask_gain", "30",
    "--pred_gain", "30", "--value_gain", "10", "--qam_gain", "-1", "--qam_bias", "-4.99393",
]  # fmt: skip


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("official")
    data = root / "d17"
    args = ["--out", str(data), "--layout", "davis2017", "--videos", "8", "--frames", "24", "--height", "96", "--width", "160"]
    assert make_synthetic.main([*args, "--max_objects", "3", "--seed", "11", "--leave_share", "0.5"]) == 0
    (data / "2017" / "trainval" / "ImageSets" / "2017" / "val.txt").write_text("synth-007\n")  # the lost-object video
    model = root / "relu_lost.pth"
    make_random_checkpoint.main(["--out", str(model), *CHECKPOINT_ARGS])
    return data / "2017", model


def compare(case: tuple[Path, Path], tmp_path: Path, *extra: str) -> float:
    davis, model = case
    report = tmp_path / "report.json"
    argv = ["--official_repo", str(OFFICIAL), "--model", str(model), "--davis", str(davis), "--fix_eviction"]
    code = compare_official.main([*argv, "--work_dir", str(tmp_path / "work"), "--json", str(report), "--min_agreement", "0", *extra])
    assert code == 0
    payload = json.loads(report.read_text())
    assert payload["settings"]["commit"].startswith(compare_official.OFFICIAL_HEAD) or payload["settings"]["commit"] == "unknown"
    return payload["overall"]


def test_head_agrees_where_objects_score_zero(case, tmp_path):
    assert compare(case, tmp_path) >= 0.999


def test_the_comparison_tells_the_rules_apart(case, tmp_path):
    # The official code with its zero filter switched back on, against this project's HEAD rule.
    assert compare(case, tmp_path, "--zero_filter", "on", "--project_quality_mean", "all") < 0.99
