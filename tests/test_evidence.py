"""The evidence scripts run end to end at a tiny size and report what they say they report.

The script's ``main(argv)`` runs in-process (``cli``); it runs eval_davis.py as a process per memory policy.
"""

import json

import pytest

from datasets.synthetic import write_davis2017


@pytest.mark.slow
def test_memory_evidence_reports_every_policy_on_every_video(lite_checkpoint, tmp_path, cli):
    root, ckpt = tmp_path / "data", lite_checkpoint
    write_davis2017(root, seed=4, num_videos=2, num_frames=16, height=48, width=64, max_objects=2, splits=("val",))
    out = tmp_path / "evidence"
    cli("scripts.evidence_memory", "--model", ckpt, "--davis", root / "2017", "--out", out, "--work", tmp_path / "work",
        "--device", "cpu", "--jobs", "2", check=True)  # two policies at a time; rows keep their order
    rows = json.loads((out / "memory.json").read_text())
    assert [r["policy"] for r in rows] == ["qdmn", "every", "fifo", "first_prev"]
    videos = (root / "2017/trainval/ImageSets/2017/val.txt").read_text().split()
    for r in rows:
        assert sorted(r["per_video"]) == sorted(videos)
        assert all(v["frames"] == 16 and 0 <= v["J&F"] <= 1 and v["admitted"] >= 0 for v in r["per_video"].values())
    every = {v: rows[1]["per_video"][v] for v in videos}
    # frames 5 and 10 of 0..15 (every 5th; a frame is judged when the next one is segmented, so 15 never is)
    assert all(v["admitted"] == 2 and v["evicted"] == 0 and v["peak_memory_frames"] == 4 for v in every.values())
    first_prev = {v: rows[3]["per_video"][v] for v in videos}
    assert all(v["peak_memory_frames"] <= 2 for v in first_prev.values())  # annotated + previous frame
    table = (out / "memory.md").read_text()
    assert all(f"| {v} | 16 |" in table for v in videos)
    assert (out / "memory_jf_over_time.png").stat().st_size > 0
    # --reuse: the rows of finished policies come back without a run, in the order asked for
    common = ["--model", ckpt, "--davis", root / "2017", "--work", tmp_path / "work", "--device", "cpu", "--reuse"]
    proc = cli("scripts.evidence_memory", *common, "--out", tmp_path / "again", "--policies", "first_prev,qdmn", check=True)
    assert "reusing" in proc.stdout and "policy qdmn ..." not in proc.stdout and "policy first_prev ..." not in proc.stdout
    assert json.loads((tmp_path / "again" / "memory.json").read_text()) == [rows[3], rows[0]]
    # a marker of another model is not reused
    marker = tmp_path / "work" / "qdmn_row.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "model_sha256": "0" * 64}))
    proc = cli("scripts.evidence_memory", *common, "--out", tmp_path / "third", "--policies", "qdmn", check=True)
    assert "policy qdmn ..." in proc.stdout and "reusing" not in proc.stdout
    # nor is a corrupt one: the policy runs again instead of a traceback
    (tmp_path / "work" / "fifo_row.json").write_text("{not json")
    proc = cli("scripts.evidence_memory", *common, "--out", tmp_path / "fourth", "--policies", "fifo", check=True)
    assert "fifo_row.json: unreadable" in proc.stdout and "policy fifo ..." in proc.stdout
