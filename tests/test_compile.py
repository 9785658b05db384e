"""``--compile`` (model/compile.py, docs/COMPILE.md): compiled parts agree with eager ones, a part that cannot be
compiled runs eager after one warning line, compile time stays out of the FPS, checkpoints keep their keys.

The tests that really compile (inductor) are slow on a cold cache and marked ``slow``; they share one
``TORCHINDUCTOR_CACHE_DIR`` under the session's temporary folder. The fast ones replace the compiler
(:func:`model.compile.compile_function` or :data:`model.compile.BACKEND`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import eval_davis
import eval_generic
import model.compile as compiling
from datasets.synthetic import VideoSpec, render_video, write_davis2017
from engine.core import InferenceCore
from evaluation.propagation import prepare_network
from model.checkpoint import atomic_save, load_weights, safe_load, weights_payload
from model.config import LITE
from model.memory_policy import MemoryConfig
from model.model import QDMNTrainer
from model.network import QDMN, random_network
from tests.helpers import save_frames, save_mask
from util.image_io import normalize_image

ROOT = Path(__file__).resolve().parents[1]
# Every 2nd frame admitted whatever its QAM score, so 12 frames overflow a capacity of 3 (evictions).
MEMORY = MemoryConfig(mem_freq=2, threshold=0.0, capacity=3)


def confident_network(seed: int = 3) -> QDMN:
    """A random lite network with near-binary masks and a readout that outweighs the query value (as
    ``scripts/make_random_checkpoint.py --pred_gain 30 --value_gain 10``): labels are not near-ties of noise."""
    network = random_network("lite", seed, "sigmoid")
    with torch.no_grad():
        network.decoder.pred.weight *= 30
        network.decoder.pred.bias *= 30
        network.kv_m_f16.val_proj.weight *= 10
        network.kv_m_f16.val_proj.bias *= 10
    return network.eval()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    """Four frames of 32x48 with two objects, and a confident lite checkpoint."""
    root = tmp_path_factory.mktemp("compile_clip")
    images, ids = render_video(np.random.default_rng(5), VideoSpec(4, 32, 48, 2))
    save_frames(root / "frames", images)
    save_mask(root / "masks" / "00000.png", ids[0])
    network = confident_network()
    atomic_save(weights_payload(network, network.config), root / "lite.pth")
    return {"frames": root / "frames", "masks": root / "masks", "model": root / "lite.pth"}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """This test's inductor cache (the variable restored afterwards)."""
    monkeypatch.setenv(compiling.CACHE_ENV, str(tmp_path / "inductor"))
    return tmp_path / "inductor"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One inductor cache for the tests that really compile: the later ones start warm."""
    return tmp_path_factory.mktemp("inductor")


@pytest.fixture
def real_compiler(shared_cache, monkeypatch) -> Path:
    monkeypatch.setenv(compiling.CACHE_ENV, str(shared_cache))
    return shared_cache


def generic(clip: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["--video", str(clip["frames"]), "--masks", str(clip["masks"]), "--model", str(clip["model"]), "--output", str(out),
            "--device", "cpu", "--threads", "1", *extra]


def run_main(main, argv: list[str], monkeypatch) -> None:
    """``main(argv)`` in this process, its progress bar writing to the test's capture: the bar (``progressbar``) keeps
    the stdout of the time it was imported, which pytest has closed by then."""
    import progressbar.utils

    monkeypatch.setattr(progressbar.utils.streams, "original_stdout", sys.stdout)
    main(argv)


def masks_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


# ----------------------------------------------------------------------------- without compiling
def test_the_cache_folder_is_ours_unless_the_user_chose_one(tmp_path, monkeypatch):
    monkeypatch.delenv(compiling.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiling.prepare_compiler() == tmp_path / "xdg" / "qdmn" / "inductor"
    assert os.environ[compiling.CACHE_ENV] == str(tmp_path / "xdg" / "qdmn" / "inductor")  # inductor reads it from there
    monkeypatch.setenv(compiling.CACHE_ENV, str(tmp_path / "mine"))
    assert compiling.prepare_compiler() == tmp_path / "mine"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compiling.default_cache_dir() == Path.home() / ".cache" / "qdmn" / "inductor"


def test_compiling_keeps_the_modules_and_the_state_dict_keys(cache):
    network = random_network("lite", 0, "sigmoid").eval()
    keys = list(network.state_dict())
    record = compiling.compile_parts(network)
    assert list(network.state_dict()) == keys and compiling.compile_record(network) is record
    assert all(isinstance(network.get_submodule(p).forward, compiling.LazyCompiled) for p in compiling.INFERENCE_PARTS)
    assert record.seconds == 0 and record.graphs == 0  # lazy: nothing compiled before the first call
    net = QDMN(LITE.with_(single_object=True), top_k=None)
    trainer = QDMNTrainer(net, 1e-3, [100], 0.1, torch.device("cpu"), compile=True)
    assert isinstance(trainer.clip_forward, compiling.LazyCompiled) and trainer.compile_record is not None
    saved = trainer.state(0, {}, [], {})["network"]
    assert list(saved) == list(QDMN(LITE.with_(single_object=True), top_k=None).state_dict())  # no _orig_mod. prefix


def failing_backend(graph, example_inputs):
    raise RuntimeError("no compiler in this test\nsecond line of the reason")


def test_a_part_that_cannot_compile_warns_once_and_runs_eager(clip, tmp_path, cache, monkeypatch, capsys):
    run_main(eval_generic.main, generic(clip, tmp_path / "eager"), monkeypatch)
    capsys.readouterr()
    monkeypatch.setattr(compiling, "BACKEND", failing_backend)
    run_main(eval_generic.main, generic(clip, tmp_path / "compiled", "--compile", "--stats_json", str(tmp_path / "s.json")), monkeypatch)
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "could not be compiled" in line]
    parts = sorted(re.match(r"warning: --compile: (\w+) could not be compiled", line).group(1) for line in warnings)
    assert parts == sorted(compiling.INFERENCE_PARTS), captured.err  # one line for each part, naming it
    assert all("(RuntimeError: no compiler in this test); it runs eager" in line for line in warnings)
    assert "Traceback" not in captured.err and f"cache: {cache}" in captured.out
    assert masks_of(tmp_path / "compiled" / "frames") == masks_of(tmp_path / "eager" / "frames")
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == 4


def slow_first_call(delay: float):
    """A stand-in for torch.compile: the first call of each part waits ``delay`` seconds and counts one graph."""
    from torch._dynamo.utils import counters

    def compile_function(fn):
        done = []

        def compiled(*args, **kwargs):
            if not done:
                time.sleep(delay)
                counters["stats"]["unique_graphs"] += 1
                done.append(True)
            return fn(*args, **kwargs)

        return compiled

    return compile_function


DELAY = 0.5  # seconds of "compiling" per part


def test_compile_time_is_reported_apart_and_left_out_of_the_fps(clip, tmp_path, cache, monkeypatch, capsys):
    run_main(eval_generic.main, generic(clip, tmp_path / "eager", "--stats_json", str(tmp_path / "eager.json")), monkeypatch)
    eager = json.loads((tmp_path / "eager.json").read_text())
    monkeypatch.setattr(compiling, "compile_function", slow_first_call(DELAY))
    capsys.readouterr()
    argv = generic(clip, tmp_path / "compiled", "--compile", "--stats_json", str(tmp_path / "compiled.json"))
    run_main(eval_generic.main, argv, monkeypatch)
    out = capsys.readouterr().out
    stats = json.loads((tmp_path / "compiled.json").read_text())
    parts = len(compiling.INFERENCE_PARTS)
    assert parts * DELAY <= stats["compile_seconds"] < parts * DELAY + 2
    assert stats["per_video"]["frames"]["compile_seconds"] == stats["compile_seconds"]
    assert stats["fps"] == pytest.approx(stats["frames"] / stats["seconds"])
    assert stats["seconds"] < eager["seconds"] + parts * DELAY / 2  # the waits are not in the time of the FPS
    assert eager["compile_seconds"] == 0 and "Compile time" not in json.dumps(eager)
    assert re.search(r"^Compile time: \d+\.\d\d s \(--compile; not in the time and FPS above\)$", out, re.M)


def test_official_kernels_stay_eager_and_say_so_in_one_line(clip, tmp_path, cache, monkeypatch, capsys):
    argv = generic(clip, tmp_path / "out", "--compile", "--official_kernels", "--stats_json", str(tmp_path / "s.json"))
    run_main(eval_generic.main, argv, monkeypatch)
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "--compile" in line] == [
        "warning: --compile ignored: --official_kernels runs the official arithmetic eager"]
    assert json.loads((tmp_path / "s.json").read_text())["compile_seconds"] == 0


def test_shards_compile_each_and_the_summary_reports_it(tmp_path, cache, monkeypatch, capsys):
    """--shard: every process compiles (its record says how long); the summary's throughput leaves the longest out."""
    write_davis2017(tmp_path / "d", seed=1, num_videos=2, num_frames=3, height=32, width=48, max_objects=2, splits=("val",))
    network = confident_network()
    atomic_save(weights_payload(network, network.config), tmp_path / "lite.pth")
    monkeypatch.setattr(compiling, "compile_function", slow_first_call(DELAY))
    args = ["--davis", str(tmp_path / "d" / "2017"), "--model", str(tmp_path / "lite.pth"), "--output", str(tmp_path / "out"),
            "--device", "cpu", "--threads", "1", "--compile", "--stats_json", str(tmp_path / "s.json")]
    for shard in ("1/2", "0/2"):
        run_main(eval_davis.main, [*args, "--shard", shard], monkeypatch)
    out = capsys.readouterr().out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert [p["compile_seconds"] >= len(compiling.INFERENCE_PARTS) * DELAY for p in stats["processes"]] == [True, True]
    assert stats["compile_seconds"] == max(p["compile_seconds"] for p in stats["processes"])
    assert "s compiling)" in out and "Compile time:" in out


# ----------------------------------------------------------------------------- compiling for real (slow)
def propagate(network: QDMN, images, first: np.ndarray, amp: bool) -> tuple[list[np.ndarray], list]:
    core = InferenceCore(network, MEMORY, torch.device("cpu"), amp=amp)
    ids = [int(i) for i in np.unique(first) if i]
    labels = []
    for t, image in enumerate(images):
        masks = torch.from_numpy(np.stack([first == i for i in ids])).float() if t == 0 else None
        labels.append(core.step(normalize_image(image), masks, ids if t == 0 else None).argmax(0).numpy())
    return labels, core.decisions


def demo_network() -> QDMN:
    """The demonstration model (lite, trained on SynthVOS): bfloat16 keeps its masks (99.95 % of the float32 pixels)."""
    state, config = load_weights(ROOT / "saves" / "qdmn_lite_synth.pth")
    network = QDMN(config)
    network.load_state_dict({k: v.float() for k, v in state.items()})
    return network.eval()


@pytest.mark.slow
@pytest.mark.parametrize(
    "make, amp, min_agreement",
    [(confident_network, False, 0.999), (confident_network, True, None), (demo_network, True, 0.999)],
    ids=["float32", "bfloat16-decisions", "bfloat16-demo_model"],
)
def test_compiled_masks_and_memory_decisions_equal_eager(make, amp, min_agreement, real_compiler):
    """The same memory decisions and at least 99.9 % of the pixels; bfloat16 as ``--amp --force_amp`` runs it.

    In bfloat16 the confident random network is chaotic: eager bfloat16 itself keeps only 82 % of its eager float32
    pixels on this video (compiled bfloat16: 85 %), so its pixels are compared on the trained demonstration model, where
    eager bfloat16 keeps 99.95 % of float32's; its memory decisions are compared all the same.
    """
    torch.set_num_threads(1)
    images, ids = render_video(np.random.default_rng(11), VideoSpec(12, 64, 96, 2))
    device = torch.device("cpu")
    eager = prepare_network(make(), device, official_kernels=False, amp=amp)
    compiled = prepare_network(make(), device, official_kernels=False, amp=amp, compile=True)
    eager_labels, eager_decisions = propagate(eager, images, ids[0], amp)
    labels, decisions = propagate(compiled, images, ids[0], amp)
    record = compiling.compile_record(compiled)
    # graphs compiled in this process for an earlier network of the same shapes are reused: none may be new here
    assert record is not None and not record.eager
    assert all(compiled.get_submodule(p).forward.compiled is not None for p in compiling.INFERENCE_PARTS)
    assert any(d.evicted is not None for _, d in eager_decisions), "the video should evict memory frames"
    assert [(f, d.admitted, d.evicted) for f, d in decisions] == [(f, d.admitted, d.evicted) for f, d in eager_decisions]
    assert np.mean(eager_labels[-1] != 0) > 0.05  # the objects are still there: the agreement is not about background
    if min_agreement is not None:
        agreement = np.mean([np.mean(a == b) for a, b in zip(labels, eager_labels)])
        assert agreement >= min_agreement, agreement


def tiny_batch(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    gt = (torch.rand(2, 3, 1, 32, 32, generator=gen) > 0.5).float()
    return {"rgb": torch.randn(2, 3, 3, 32, 32, generator=gen), "gt": gt, "cls_gt": gt[:, :, 0].long()}


def training_losses(compile: bool) -> tuple[list[float], QDMNTrainer]:
    torch.manual_seed(0)
    trainer = QDMNTrainer(QDMN(LITE.with_(single_object=True), top_k=None), 1e-3, [100], 0.1, torch.device("cpu"), compile=compile)
    losses = [trainer.do_pass(tiny_batch(seed), it).losses["total_loss"].item() for it, seed in enumerate((1, 2))]
    return losses, trainer


@pytest.mark.slow
def test_a_compiled_training_step_gives_the_eager_loss(real_compiler):
    torch.set_num_threads(1)
    eager, _ = training_losses(compile=False)
    compiled, trainer = training_losses(compile=True)
    assert trainer.compile_record is not None and not trainer.compile_record.eager and trainer.compile_record.graphs >= 1
    assert compiled[0] == pytest.approx(eager[0], rel=1e-5, abs=1e-5)  # the same weights: rounding apart
    assert compiled[1] == pytest.approx(eager[1], rel=1e-3)  # after one Adam step from slightly different gradients


def train_run(cwd: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_HOME": str(cwd / "torch_home"), "PYTHONPATH": str(ROOT),
           compiling.CACHE_ENV: str(cache)}
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def saved(cwd: Path, pattern: str) -> Path:
    files = sorted(cwd.glob(f"saves/*/{pattern}"))
    assert files, f"no saves/*/{pattern} in {cwd}"
    return files[-1]


@pytest.mark.slow
def test_exact_resume_with_compile(tmp_path, real_compiler):
    """N iterations equal N/2 + N/2 with --compile; the checkpoints hold the network's own keys and resume eager too."""
    write_davis2017(tmp_path / "data", seed=0, num_videos=3, num_frames=8, height=64, width=80, max_objects=2, splits=("val",))
    davis = tmp_path / "data" / "2017" / "trainval"
    args = ["--stage", "1", "--bl_root", str(tmp_path / "bl"), "-i", "4", "--model_config", "lite", "--size", "64", "-b", "2",
            "--num_workers", "0", "--compile"]
    for kind in ("JPEGImages", "Annotations"):  # the BL30K layout
        shutil.copytree(davis / kind / "480p", tmp_path / "bl" / kind)
    full = train_run(tmp_path / "full", real_compiler, *args, "--id", "full")
    assert "--compile: the first iteration took" in full.stdout and "could not be compiled" not in full.stderr
    train_run(tmp_path / "half", real_compiler, *args, "--id", "half", "--stop_at", "2")
    checkpoint = saved(tmp_path / "half", "*_checkpoint.pth")
    state = safe_load(checkpoint)
    assert state["it"] == 2 and list(state["network"]) == list(QDMN(LITE, top_k=None).state_dict())
    train_run(tmp_path / "rest", real_compiler, *args, "--id", "rest", "--load_model", str(checkpoint))
    full_weights = safe_load(saved(tmp_path / "full", "*_4.pth"))["network"]
    rest_weights = safe_load(saved(tmp_path / "rest", "*_4.pth"))["network"]
    assert all(torch.equal(full_weights[k], rest_weights[k]) for k in full_weights)
    eager = [a for a in args if a != "--compile"]
    train_run(tmp_path / "eager", real_compiler, *eager, "--id", "eager", "--load_model", str(checkpoint), "-i", "3")
    assert safe_load(saved(tmp_path / "eager", "*_checkpoint.pth"))["it"] == 3

