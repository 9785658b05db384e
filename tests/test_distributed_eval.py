"""Evaluation over several processes (torchrun ranks on gloo, --shard I/N shards): the same bytes as one process.

torchrun runs real processes; the one-process references and the shards (one process each in real use, one after
another here) call the entry point's ``main(argv)`` in-process. Most torchrun runs are slow; one stays in the default
selection.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from datasets.synthetic import VideoSpec, render_video, write_davis2016, write_youtube
from evaluation.arguments import shard_arg
from evaluation.distributed import MERGE, Plan, incomplete_message, plan_from, split_by_frames
from tests.helpers import ROOT, run, save_frames, save_mask, tree
from util.errors import UserError
from util.output_safety import STATE_DIR, is_complete, lock_output, video_lock

THREADS = ["--device", "cpu", "--threads", "1"]  # one thread everywhere: the same arithmetic in every process


# ----------------------------------------------------------------------------- units
def test_split_by_frames_balances_longest_first_and_is_deterministic():
    costs = [10, 80, 30, 30, 50, 20, 5]
    groups = split_by_frames(costs, 3)
    assert groups == split_by_frames(list(costs), 3)
    assert sorted(i for g in groups for i in g) == list(range(len(costs)))
    assert all(g == sorted(g) for g in groups)
    # longest first onto the least-loaded group (ties: the lower group): loads 80, 75, 70 (round robin: 85, 100, 40)
    assert groups == [[1], [4, 5, 6], [0, 2, 3]]
    assert split_by_frames([3, 3], 4) == [[0], [1], [], []]  # more processes than videos: some idle


def test_shard_argument_and_plan():
    assert shard_arg("1/4") == "1/4" and shard_arg(MERGE) == MERGE
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(Exception, match="I/N"):
            shard_arg(bad)
    assert plan_from(None) == Plan()
    assert plan_from("1/3") == Plan("shard", 1, 3)
    assert plan_from("0/1") == Plan()


def test_incomplete_message_names_the_videos_or_says_only_the_finish_is_missing():
    assert incomplete_message(["a", "b"]).startswith("2 video(s) not complete: a, b; rerun the same command")
    assert "and 5 more" in incomplete_message([str(i) for i in range(25)])
    assert incomplete_message([]).startswith("every video is complete, but the run stopped before its summary")


def test_plan_under_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert plan_from(None) == Plan("torchrun", 3, 4, 1)
    with pytest.raises(UserError, match="not under torchrun"):
        plan_from("0/2")


def test_video_lock_keeps_a_second_holder_out(tmp_path):
    with video_lock(tmp_path, "cows", "first") as other:
        assert other is None
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; from util.output_safety import video_lock\n"
             "with video_lock(Path(sys.argv[1]), 'cows', 'second') as other: print(other)", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, check=True)
        assert child.stdout.strip() == "first"
    with video_lock(tmp_path, "cows", "third") as other:  # released
        assert other is None


def test_a_shared_output_lock_admits_shards_but_not_a_plain_run(tmp_path):
    lock_output(tmp_path, shared=True)
    code = "import sys; from pathlib import Path; from util.output_safety import lock_output; lock_output(Path(sys.argv[1]), {})"
    shared = subprocess.run([sys.executable, "-c", code.format("shared=True"), str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert shared.returncode == 0, shared.stderr
    plain = subprocess.run([sys.executable, "-c", code.format("shared=False"), str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert plain.returncode != 0 and "another run" in plain.stderr and f"pid {os.getpid()}" in plain.stderr


# ----------------------------------------------------------------------------- command lines
def torchrun(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 SCRIPT.py *args`` (``args[0]`` a module name, as ``cli`` takes it)."""
    return run("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()), f"{args[0]}.py", *args[1:],
               check=check)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def written(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, without the run's bookkeeping in .qdmn/ (records name the command and the processes)."""
    return tree(folder, bookkeeping=False)


def set_aside(out: Path, name: str) -> tuple[dict[str, bytes], bytes]:
    """The output folder's masks and its zip's bytes; both moved away so the next run writes to the same path."""
    zip_path = out.with_name(f"{out.name}.zip")
    result = written(out), zip_path.read_bytes()
    out.rename(out.with_name(name))
    zip_path.rename(out.with_name(f"{name}.zip"))
    return result


@pytest.fixture(scope="module")
def uneven(tmp_path_factory) -> Path:
    """Five DAVIS videos of different lengths (so that the split is uneven)."""
    from datasets.synthetic import write_davis2017

    root = tmp_path_factory.mktemp("davis")
    write_davis2017(root, seed=11, num_videos=5, num_frames=8, height=48, width=64, max_objects=2, splits=("val",))
    frames = root / "2017/trainval/JPEGImages/480p"
    for cut, video in zip((0, 2, 3, 5, 6), sorted(frames.iterdir())):
        for jpg in sorted(video.glob("*.jpg"))[8 - cut:]:
            jpg.unlink()
    return root


def test_torchrun_and_shards_write_what_one_process_writes_davis(uneven, lite_checkpoint, tmp_path, cli):
    root, ckpt = uneven, lite_checkpoint
    out = tmp_path / "out"
    args = ["eval_davis", "--model", str(ckpt), "--davis", str(root / "2017"), "--output", str(out), "--zip", *THREADS]
    cli(*args, check=True)
    reference = set_aside(out, "single")

    proc = torchrun(*args, "--stats_json", str(tmp_path / "stats.json"))
    assert "rank 0/2" in proc.stdout and "rank 1/2" in proc.stdout and "Submission archive" in proc.stdout
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == 8 + 6 + 5 + 3 + 2 and len(stats["processes"]) == 2 and len(stats["per_video"]) == 5
    assert set_aside(out, "torchrun") == reference
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "torchrun" / STATE_DIR / "ranks").glob("*.json"))]
    assert [r["rank"] for r in records] == [0, 1] and sum(r["videos"] for r in records) == 5
    assert all(r["status"] == "done" and r["frames"] > 0 for r in records)

    first = cli(*args, "--shard", "1/2", check=True)
    assert "left to the other shards" in first.stdout and not out.with_name("out.zip").exists()
    merge = cli(*args, "--shard", MERGE)
    assert merge.returncode == 1 and "not complete" in merge.stderr
    last = cli(*args, "--shard", "0/2", check=True)
    assert "shard 0/2" in last.stdout and "shard 1/2" in last.stdout and "Submission archive" in last.stdout
    assert set_aside(out, "shards") == reference


@pytest.mark.slow
def test_torchrun_youtube_layout_matches_one_process(lite_checkpoint, tmp_path, cli):
    yv = tmp_path / "yv"
    write_youtube(yv, seed=9, num_videos=3, num_frames=5, height=48, width=80, max_objects=2)
    out = tmp_path / "out"
    args = ["eval_youtube", "--model", str(lite_checkpoint), "--yv", str(yv), "--output", str(out), "--size", "64", "--zip", *THREADS]
    cli(*args, check=True)
    reference = set_aside(out, "single")
    torchrun(*args)
    assert set_aside(out, "torchrun") == reference
    cli(*args, "--shard", "0/2", check=True)
    cli(*args, "--shard", "1/2", check=True)
    assert set_aside(out, "shards") == reference


@pytest.mark.slow
def test_torchrun_davis_2016_matches_one_process(lite_checkpoint, tmp_path, cli):
    write_davis2016(tmp_path, seed=5, num_videos=3, num_frames=4, height=48, width=64)
    out = tmp_path / "out"
    args = ["eval_davis_2016", "--model", str(lite_checkpoint), "--davis", str(tmp_path / "2016"), "--output", str(out), *THREADS]
    cli(*args, check=True)
    reference = written(out)
    out.rename(tmp_path / "single")
    torchrun(*args)
    assert written(out) == reference and len(reference) == 12


@pytest.mark.slow
def test_a_failing_rank_leaves_the_others_videos_and_names_its_own(uneven, lite_checkpoint, tmp_path):
    """A video that cannot be decoded stops its rank; the other rank still writes its share, and the run says what is missing."""
    root, ckpt = uneven, lite_checkpoint
    broken = tmp_path / "davis"
    subprocess.run(["cp", "-r", str(root / "2017"), str(broken)], check=True)
    videos = sorted((broken / "trainval/JPEGImages/480p").iterdir())
    bad = videos[0]  # the longest video: rank 0's first
    (bad / "00003.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    args = ["eval_davis", "--model", str(ckpt), "--davis", str(broken), "--output", str(out), *THREADS]
    proc = torchrun(*args, check=False)
    assert proc.returncode != 0
    assert "00003.jpg" in proc.stderr and f"1 video(s) not complete: {bad.name}" in proc.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [v.name for v in videos[1:]]


@pytest.mark.slow
def test_killing_a_rank_then_rerunning_completes_the_same_folder(lite_checkpoint, tmp_path, cli):
    from datasets.synthetic import write_davis2017

    root, ckpt = tmp_path, lite_checkpoint
    write_davis2017(root, seed=7, num_videos=6, num_frames=30, height=48, width=64, max_objects=2, splits=("val",))
    out = tmp_path / "out"
    args = ["eval_davis", "--model", str(ckpt), "--davis", str(root / "2017"), "--output", str(out), "--zip", *THREADS]
    cli(*args, check=True)
    reference = set_aside(out, "single")

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()), "eval_davis.py",
           *args[1:]]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rank1 = out / STATE_DIR / "ranks" / "torchrun-1-of-2.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if rank1.is_file() and list((out / STATE_DIR).glob("synth-*.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before a rank could be killed"
    os.kill(json.loads(rank1.read_text())["pid"], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    names = sorted(v.name for v in (root / "2017/trainval/JPEGImages/480p").iterdir())
    published = [name for name in names if is_complete(out, name)]
    missing = [name for name in names if name not in published]
    assert published and missing, published
    assert f"{len(missing)} video(s) not complete: {', '.join(missing)}" in stderr, stderr[-2000:]
    assert not out.with_name("out.zip").exists()

    rerun = torchrun(*args)
    assert f"skipping {len(published)} complete video(s)" in rerun.stdout
    assert set_aside(out, "rerun") == reference


@pytest.mark.slow
def test_torchrun_generic_video_one_rank_writes_it_and_the_overlay(lite_checkpoint, tmp_path, cli):
    """One video over two ranks: one rank has nothing to do; the masks are the one-process masks, and the overlay
    and J&F are written once, after the masks."""
    frames, masks = render_video(np.random.default_rng(3), VideoSpec(6, 48, 64, 2))
    save_frames(tmp_path / "clip", frames, ext=".png")
    save_mask(tmp_path / "masks/00000.png", masks[0])
    for t, mask in enumerate(masks):
        save_mask(tmp_path / f"gt/{t:05d}.png", mask)
    out = tmp_path / "out"
    args = ["eval_generic", "--model", str(lite_checkpoint), "--video", str(tmp_path / "clip"), "--masks", str(tmp_path / "masks"),
            "--gt", str(tmp_path / "gt"), "--output", str(out), "--overlay", *THREADS]
    cli(*args, check=True)
    reference = written(out)
    out.rename(tmp_path / "single")
    proc = torchrun(*args)
    assert proc.stdout.count("J&F ") == 1 and proc.stdout.count("Overlay: ") == 1
    got = written(out)
    assert {k: v for k, v in got.items() if k.startswith("clip/")} == {k: v for k, v in reference.items() if k.startswith("clip/")}
    assert sorted(got) == sorted(reference)  # the overlay video and preview too
