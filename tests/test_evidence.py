"""The evidence scripts run end to end at a tiny size and report what they say they report."""

import json

from tests.test_eval_cli import davis_with_lite_checkpoint, run


def test_memory_evidence_reports_every_policy_on_every_video(tmp_path):
    root, ckpt = davis_with_lite_checkpoint(tmp_path / "data", 4, 2, 16, 48, 64)
    out = tmp_path / "evidence"
    run("scripts/evidence_memory.py", "--model", str(ckpt), "--davis", str(root / "2017"), "--out", str(out),
        "--work", str(tmp_path / "work"), "--device", "cpu", "--jobs", "2")  # two policies at a time; rows keep their order
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
    common = ["--model", str(ckpt), "--davis", str(root / "2017"), "--work", str(tmp_path / "work"), "--device", "cpu", "--reuse"]
    proc = run("scripts/evidence_memory.py", *common, "--out", str(tmp_path / "again"), "--policies", "first_prev,qdmn")
    assert "reusing" in proc.stdout and "policy qdmn ..." not in proc.stdout and "policy first_prev ..." not in proc.stdout
    assert json.loads((tmp_path / "again" / "memory.json").read_text()) == [rows[3], rows[0]]
    # a marker of another model is not reused
    marker = tmp_path / "work" / "qdmn_row.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "model_sha256": "0" * 64}))
    proc = run("scripts/evidence_memory.py", *common, "--out", str(tmp_path / "third"), "--policies", "qdmn")
    assert "policy qdmn ..." in proc.stdout and "reusing" not in proc.stdout
    # nor is a corrupt one: the policy runs again instead of a traceback
    (tmp_path / "work" / "fifo_row.json").write_text("{not json")
    proc = run("scripts/evidence_memory.py", *common, "--out", str(tmp_path / "fourth"), "--policies", "fifo")
    assert "fifo_row.json: unreadable" in proc.stdout and "policy fifo ..." in proc.stdout
