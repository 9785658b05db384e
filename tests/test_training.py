"""train.py end to end on tiny generated data (CPU, lite model, 64 px crops, batch 2).

Runs call ``train.main(argv)`` in-process (:func:`tests.helpers.train_here`); real processes where the process is the
point: the smoke run of stage 1, torchrun and torch.distributed.launch (slow), SIGTERM and SIGKILL.
"""

import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import model.losses
import train
from model.aggregate import aggregate_logits
from model.checkpoint import atomic_save, safe_load
from model.config import LITE
from model.model import ClipForward, QDMNTrainer, expand_single_object, use_channels_last
from model.network import QDMN
from tests.helpers import AMP, COMMON, TIMEOUT, TRAIN, Ran, call_main, saved, signal_run, train_env, train_error, train_here
from training.config import DEFAULT_SEED


def run_train(cwd: Path, *args: str, launcher: tuple[str, ...] = (sys.executable,), threads: int = 1) -> subprocess.CompletedProcess:
    """train.py as a real process (under ``launcher``) in ``cwd``."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([*launcher, TRAIN, *args], cwd=cwd, env=train_env(cwd, threads), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def logged_losses(output: str) -> list[float]:
    return [float(v) for v in re.findall(r"\[total_loss\s*\]: (\S+)", output)]


def initial_network(single_object: bool) -> dict[str, torch.Tensor]:
    """The random initialisation train.py makes without ImageNet weights (same seed, same order)."""
    train.seed_everything(DEFAULT_SEED)
    return QDMN(LITE.with_(single_object=single_object), top_k=None).state_dict()


def assert_trained(weights_file: Path, single_object: bool, output: str) -> dict:
    payload = safe_load(weights_file)
    assert payload["format"] == "qdmn-weights" and payload["config"]["qam_activation"] == "sigmoid"
    assert payload["config"]["single_object"] == single_object
    losses = logged_losses(output)
    assert losses and all(math.isfinite(v) for v in losses)
    initial = initial_network(single_object)
    changed = [k for k, v in payload["network"].items() if v.is_floating_point() and not torch.equal(v, initial[k])]
    assert any(k.startswith("mask_rgb_encoder.") for k in changed) and any(k.startswith("score.") for k in changed)
    assert all(torch.isfinite(v).all() for v in payload["network"].values() if v.is_floating_point())
    return payload


@pytest.fixture(scope="module")
def stage0(train_data, tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("stage0")
    proc = train_here(cwd, "--stage", "0", "--static_root", str(train_data["static"]), "-i", "3", "--id", "s0", "--mirror_init", *COMMON)
    assert_trained(saved(cwd, "*_3.pth"), True, proc.stdout)
    assert "Memory side initialised as a copy of the query side" in proc.stdout
    return saved(cwd, "*_3.pth")


def test_stage0_static_images(stage0):
    checkpoint = safe_load(stage0.with_name(stage0.name.replace("_3.pth", "_checkpoint.pth")))
    assert checkpoint["it"] == 3 and checkpoint["config"]["single_object"]
    assert {"optimizer", "scheduler", "data_state", "rng", "network"} <= set(checkpoint)
    assert (stage0.parents[2] / "log" / stage0.parent.name).is_dir()  # TensorBoard events


def test_stage1_blender(train_data, tmp_path):
    """train.py's smoke run: a real process."""
    proc = run_train(tmp_path, "--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "3", "--id", "s1", *COMMON)
    assert_trained(saved(tmp_path, "*_3.pth"), False, proc.stdout)
    assert "max_jump" in proc.stdout


def test_stage2_from_stage0_network(train_data, stage0, tmp_path):
    args = ["--stage", "2", "--davis_root", str(train_data["davis"]), "--yv_root", str(train_data["yv"]), "--no_subset", "-i", "3",
            "--id", "s2"]
    proc = train_here(tmp_path, *args, "--load_network", str(stage0), *COMMON, "--crop_width", "80")  # 64x80 crops
    payload = safe_load(saved(tmp_path, "*_3.pth"))
    assert payload["network"]["mask_rgb_encoder.conv1.weight"].shape[1] == 5
    assert payload["train_size"] == [64, 80]  # the weights say which frames the model was trained on
    exported = tmp_path / "exported.pth"
    call_main("scripts.export_weights", [str(saved(tmp_path, "*_checkpoint.pth")), str(exported), "--half"], check=True)
    assert safe_load(exported)["train_size"] == [64, 80]
    assert "Network weights loaded" in proc.stdout and "DAVIS dataset size: 3" in proc.stdout
    assert all(math.isfinite(v) for v in logged_losses(proc.stdout))


def test_single_object_network_widened_for_two_objects():
    torch.manual_seed(0)
    so = QDMN(LITE.with_(single_object=True), top_k=None).state_dict()
    mo = QDMN(LITE, top_k=None)
    state = expand_single_object(so, mo)
    w = state["mask_rgb_encoder.conv1.weight"]
    assert w.shape == (64, 5, 7, 7) and torch.equal(w[:, :4], so["mask_rgb_encoder.conv1.weight"])
    extra = w[:, 4].reshape(64, 49)
    assert torch.allclose(extra.T @ extra, torch.eye(49), atol=1e-5)  # orthogonal columns
    train.load_network_into(mo, so, "so.pth")


def _reference_clip(net: QDMN, rgb, gt, sec, selector):
    """The official two-object training forward, one object at a time (model/model.py of QDMN)."""

    def memorize(image, mask, other):
        key, value, score = net.encode_memory(image, mask, other)
        return key.flatten(2), value.flatten(2), score

    def segment(image, keys, values, mask1, mask2):
        q = net.query(image, torch.max(mask1, mask2))
        logits = torch.cat([net.decode(net.read(k, v, q), q) for k, v in zip(keys, values)], 1)
        logits = aggregate_logits(torch.sigmoid(logits) * selector[:, :, None, None], dim=1)
        return logits, torch.softmax(logits, 1)[:, 1:]

    k1, v1, _ = memorize(rgb[:, 0], gt[:, 0], sec[:, 0])
    k2, v2, _ = memorize(rgb[:, 0], sec[:, 0], gt[:, 0])
    logits1, prev = segment(rgb[:, 1], (k1, k2), (v1, v2), gt[:, 0], sec[:, 0])
    pk1, pv1, s11 = memorize(rgb[:, 1], prev[:, 0:1], prev[:, 1:2])
    pk2, pv2, s12 = memorize(rgb[:, 1], prev[:, 1:2], prev[:, 0:1])
    keys, values = (torch.cat([k1, pk1], 2), torch.cat([k2, pk2], 2)), (torch.cat([v1, pv1], 2), torch.cat([v2, pv2], 2))
    logits2, this = segment(rgb[:, 2], keys, values, prev[:, 0:1], prev[:, 1:2])
    _, _, s21 = memorize(rgb[:, 2], this[:, 0:1], this[:, 1:2])
    _, _, s22 = memorize(rgb[:, 2], this[:, 1:2], this[:, 0:1])
    return {
        "logits_1": logits1,
        "logits_2": logits2,
        "mask_1": prev,
        "mask_2": this,
        "score_1": torch.stack([s11, s12], 1),
        "score_2": torch.stack([s21, s22], 1),
    }


def test_clip_forward_matches_the_official_per_object_forward():
    torch.manual_seed(0)
    net = QDMN(LITE, top_k=None).eval()
    rgb = torch.randn(2, 3, 3, 64, 64)
    gt, sec = (torch.rand(2, 3, 1, 64, 64) > 0.7).float(), (torch.rand(2, 3, 1, 64, 64) > 0.7).float()
    selector = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    with torch.no_grad():
        ours = ClipForward(net)(rgb, gt, sec, selector)
        reference = _reference_clip(net, rgb, gt, sec, selector)
    for key, value in reference.items():
        assert torch.allclose(ours[key], value, atol=1e-5, rtol=1e-4), key


def _digests(output: str) -> dict[str, str]:
    return dict(re.findall(r"rank (\d): weights sha256 (\w+)", output))


@pytest.mark.parametrize(
    ("launcher", "extra"),
    [
        # the ranks average the statistics they learn from their own batches
        pytest.param(("torchrun", "--nproc_per_node=2"), ["--train_bn"], marks=pytest.mark.slow),
        pytest.param((sys.executable, "-m", "torch.distributed.launch", "--nproc_per_node=2"), [], marks=pytest.mark.slow),
    ],
    ids=["torchrun-train_bn", "distributed.launch"],
)
def test_two_processes_gloo(train_data, tmp_path, launcher, extra):
    if launcher[0] == "torchrun":
        launcher = (shutil.which("torchrun") or pytest.skip("torchrun not on PATH"), *launcher[1:])
    args = ["--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "2", "--id", "ddp", "--device", "cpu", *COMMON, *extra]
    proc = run_train(tmp_path, *args, launcher=(*launcher, "--master_port", str(29500 + os.getpid() % 500)), threads=1)
    output = proc.stdout + proc.stderr
    digests = _digests(output)
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], output[-2000:]
    assert "world of size 2" in output
    checkpoint = safe_load(saved(tmp_path, "*_checkpoint.pth"))
    assert checkpoint["data_state"]["world_size"] == 2
    initial = _statistics(initial_network(single_object=False))
    learnt = [k for k, v in _statistics(checkpoint["network"]).items() if not torch.equal(v, initial[k])]
    assert bool(learnt) == bool(extra) and ("batch norm learns its statistics" in output) == bool(extra)


@pytest.mark.parametrize("precision", [[], pytest.param(AMP, marks=pytest.mark.slow), pytest.param(["--train_bn"], marks=pytest.mark.slow)],
                         ids=["float32", "amp", "train_bn"])
def test_exact_resume(train_data, tmp_path, precision):
    # 5 videos, batch 2: 2 iterations per epoch; stopping after 3 resumes mid-epoch, after
    # an epoch change (and a max_jump change of the curriculum).
    args = ["--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "4", *COMMON, *precision]
    proc = train_here(tmp_path / "full", *args, "--id", "full")
    assert ("mixed precision: bfloat16 autocast" in proc.stdout) == ("--amp" in precision)
    train_here(tmp_path / "half", *args, "--id", "half", "--stop_at", "3")
    checkpoint = saved(tmp_path / "half", "*_checkpoint.pth")
    assert safe_load(checkpoint)["it"] == 3
    proc = train_here(tmp_path / "rest", *args, "--id", "rest", "--load_model", str(checkpoint))
    assert "Resuming" in proc.stdout and "not continue exactly" not in proc.stdout and "checkpoint was trained" not in proc.stdout
    full = safe_load(saved(tmp_path / "full", "*_4.pth"))["network"]
    rest = safe_load(saved(tmp_path / "rest", "*_4.pth"))["network"]
    half = safe_load(saved(tmp_path / "half", "*_3.pth"))["network"]
    assert all(torch.equal(full[k], rest[k]) for k in full)
    assert not all(torch.equal(full[k], half[k]) for k in full)


def test_resuming_with_other_training_flags_warns():
    lines: list[str] = []
    opts = SimpleNamespace(amp=True, train_bn=False)
    train.warn_changed_training_flags({"hyperparameters": {"amp": True, "train_bn": True}}, opts, lines.append)
    assert lines == ["warning: the checkpoint was trained with --train_bn, this run without it"]
    train.warn_changed_training_flags({"hyperparameters": {}}, opts, lines.append)  # written before --train_bn existed
    assert lines[1:] == ["warning: the checkpoint was trained without --amp, this run with it"]


def test_sigterm_saves_and_exits_zero(train_data, tmp_path):
    args = ["--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "100000", "--id", "sig", *COMMON]
    returncode, output = signal_run(tmp_path, args, "It      1 ", signal.SIGTERM)
    assert returncode == 0, output[-2000:]
    checkpoint = safe_load(saved(tmp_path, "*_checkpoint.pth"))
    assert checkpoint["it"] >= 1 and "SIGTERM" in output


SLOW_WRITER = """
import sys, time, torch
from pathlib import Path
from model.checkpoint import atomic_save

class Slow:
    def __reduce__(self):
        Path({ready!r}).write_text("writing")
        time.sleep(60)
        return (int, (0,))

atomic_save({{"it": 2, "blob": torch.zeros(1000), "slow": Slow()}}, {path!r})
"""


def test_killed_while_saving_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "run_checkpoint.pth"
    atomic_save({"it": 1, "network": {"w": torch.ones(3)}}, path)
    ready = tmp_path / "ready"
    code = SLOW_WRITER.format(ready=str(ready), path=str(path))
    child = subprocess.Popen([sys.executable, "-c", code], env=train_env(tmp_path))
    try:
        deadline = time.time() + TIMEOUT
        while not ready.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the child never started writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert safe_load(path)["it"] == 1


# ------------------------------------------------------------------ one-line errors, exit 2
def test_empty_data_root_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no training images" in train_error("--stage", "0", "--static_root", str(tmp_path / "empty"))
    assert "no BL30K videos" in train_error("--stage", "1", "--bl_root", str(tmp_path / "empty"))
    err = train_error("--stage", "2", "--davis_root", str(tmp_path / "empty"), "--yv_root", str(tmp_path / "empty"))
    assert "no training videos" in err


def test_crop_width_and_mirror_init_argument_errors(train_data, capsys):
    data = train_data
    stage2 = ["--stage", "2", "--davis_root", str(data["davis"]), "--yv_root", str(data["yv"]), "--no_subset"]
    for args, message in (
        ((*stage2, "--crop_width", "90"), "--crop_width must be a positive multiple of 16"),
        (("--stage", "0", "--static_root", str(data["static"]), "--crop_width", "96"), "--crop_width applies to the video stages"),
        ((*stage2, "--mirror_init", "--load_network", "x.pth"), "--mirror_init initialises a network from scratch"),
    ):
        with pytest.raises(SystemExit) as exc:
            train.main(list(args))
        assert exc.value.code == 2 and message in capsys.readouterr().err  # argparse: usage line, then the error


def test_official_subset_mismatch_explains_no_subset(train_data):
    err = train_error("--stage", "2", "--davis_root", str(train_data["davis"]), "--yv_root", str(train_data["yv"]))
    assert "--no_subset" in err


def test_wrong_files_for_load_model_and_load_network(stage0, train_data):
    data = train_data
    checkpoint = stage0.with_name(stage0.name.replace("_3.pth", "_checkpoint.pth"))
    base = ["--stage", "0", "--static_root", str(data["static"]), *COMMON]
    assert "--load_network" in train_error(*base, "--load_model", str(stage0))
    assert "--load_model" in train_error(*base, "--load_network", str(checkpoint))
    assert "not found" in train_error(*base, "--load_model", str(stage0.parent / "missing.pth"))
    err = train_error("--stage", "1", "--bl_root", str(data["bl"]), *COMMON, "--load_model", str(checkpoint))
    assert "cannot resume stage 1" in err


# ------------------------------------------------------------------ non-finite losses
class InfGrad(torch.autograd.Function):
    """Identity forward, infinite gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def run_poisoned(monkeypatch, cwd: Path, args: list[str], bad_loss=(), bad_grad=(), from_it=None, code: int = 0) -> Ran:
    """train.py in-process with its loss made NaN at the (0-based) iterations ``bad_loss`` and from ``from_it`` on,
    and its gradients infinite at ``bad_grad``."""
    original = model.losses.LossComputer.compute

    def compute(self, data, out, it):
        losses = original(self, data, out, it)
        if it in bad_loss or (from_it is not None and it >= from_it):
            losses["total_loss"] = losses["total_loss"] * float("nan")
        elif it in bad_grad:
            losses["total_loss"] = InfGrad.apply(losses["total_loss"])
        return losses

    monkeypatch.setattr(model.losses.LossComputer, "compute", compute)
    return train_here(cwd, *args, code=code)


def test_non_finite_loss_or_gradient_skips_the_update_and_names_the_samples(train_data, tmp_path, monkeypatch):
    args = ["--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "4", "--save_every", "1", "--id", "nan", *COMMON]
    # iteration 2 (0-based 1): NaN loss; iteration 4 (0-based 3): infinite gradients
    proc = run_poisoned(monkeypatch, tmp_path, args, bad_loss={1}, bad_grad={3})
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("warning: iteration")]
    assert len(warnings) == 2, proc.stdout[-3000:]
    assert "iteration 2: non-finite loss" in warnings[0] and "iteration 4: non-finite gradient" in warnings[1]
    assert all(re.search(r"on samples \[synth-\d{3}, synth-\d{3}\]", w) for w in warnings), warnings
    weights = {it: safe_load(saved(tmp_path, f"*_{it}.pth"))["network"] for it in (1, 2, 3, 4)}
    assert all(torch.equal(weights[1][k], weights[2][k]) for k in weights[1])  # skipped update
    assert all(torch.equal(weights[3][k], weights[4][k]) for k in weights[3])
    assert not all(torch.equal(weights[2][k], weights[3][k]) for k in weights[2])  # a normal update in between
    assert all(torch.isfinite(v).all() for v in weights[4].values() if v.is_floating_point())


def test_ten_non_finite_losses_in_a_row_stop_with_the_last_checkpoint_intact(train_data, tmp_path, monkeypatch):
    args = ["--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "100", "--save_every", "2", "--id", "nan", *COMMON]
    proc = run_poisoned(monkeypatch, tmp_path, args, from_it=2, code=2)  # iterations 3.. are all NaN
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: training stopped: 10 non-finite") and "iterations 3-12" in err, err
    assert "_checkpoint.pth (iteration 10) is intact" in err, err
    checkpoint = safe_load(saved(tmp_path, "*_checkpoint.pth"))
    good = safe_load(saved(tmp_path, "*_2.pth"))["network"]
    assert checkpoint["it"] == 10 and not list(tmp_path.glob("saves/*/*_12.pth"))
    assert all(torch.equal(checkpoint["network"][k], good[k]) for k in good)


# ------------------------------------------------------------------ SIGKILL at random moments
@pytest.mark.slow
def test_sigkill_at_random_moments_always_resumes_to_the_same_weights(train_data, tmp_path):
    """Two kills in float32, one with --amp (each against its own uninterrupted run). The uninterrupted runs and the
    resumed ones run in-process; the killed ones are real processes."""
    base = ["--stage", "1", "--bl_root", str(train_data["bl"]), "-i", "8", "--save_every", "1", *COMMON]
    finals = {}
    for name, precision in (("float32", []), ("amp", AMP)):
        train_here(tmp_path / f"full_{name}", *base, *precision, "--id", "full")
        finals[name] = safe_load(saved(tmp_path / f"full_{name}", "*_8.pth"))["network"]
    rng = random.Random(7)
    resumed_from = []
    for trial, name in enumerate(["float32", "amp", "float32"]):
        args, full = [*base, *(AMP if name == "amp" else [])], finals[name]
        cwd = tmp_path / f"trial{trial}"
        signal_run(cwd, [*args, "--id", "killed"], "Checkpoint saved", signal.SIGKILL, delay=rng.uniform(0.0, 2.5))
        checkpoint_file = saved(cwd, "*_checkpoint.pth")
        checkpoint = safe_load(checkpoint_file)  # loadable whatever the moment of the kill
        proc = train_here(cwd / "rest", *args, "--id", "rest", "--load_model", str(checkpoint_file))
        assert f"Resuming {checkpoint_file} at iteration {checkpoint['it']}" in proc.stdout
        resumed_from.append(checkpoint["it"])
        if checkpoint["it"] < 8:
            rest = safe_load(saved(cwd / "rest", "*_8.pth"))["network"]
            assert all(torch.equal(full[k], rest[k]) for k in full), f"trial {trial} ({name}): resumed at {checkpoint['it']}"
    assert any(it < 8 for it in resumed_from), f"every kill came after the end: {resumed_from}"


def tiny_batch(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    gt = (torch.rand(2, 3, 1, 32, 32, generator=gen) > 0.5).float()
    return {"rgb": torch.randn(2, 3, 3, 32, 32, generator=gen), "gt": gt, "cls_gt": gt[:, :, 0].long()}


def one_step(amp_dtype, channels_last: bool = False, train_bn: bool = False):
    """One tiny training step from a fixed initialisation: (state dict, trainer)."""
    torch.manual_seed(0)
    net = QDMN(LITE.with_(single_object=True), top_k=None)
    trainer = QDMNTrainer(net, 1e-3, [100], 0.1, torch.device("cpu"), amp_dtype=amp_dtype, channels_last=channels_last,
                          train_bn=train_bn)
    outcome = trainer.do_pass(tiny_batch(), 0)
    assert outcome.skipped is None and not trainer.scaler.is_enabled()
    return net.state_dict(), trainer


def _statistics(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def test_batch_norm_is_frozen_by_default_and_learns_its_statistics_with_train_bn():
    initial = _statistics(initial_network(single_object=True))
    frozen, trainer = one_step(None)
    assert not any(m.training for m in trainer.net.modules())
    assert all(torch.equal(v, initial[k]) for k, v in _statistics(frozen).items())
    learnt, trainer = one_step(None, train_bn=True)
    assert len(trainer.batch_norms) == len(initial) // 2 and all(bn.training for bn in trainer.batch_norms)
    assert not any(m.training for m in trainer.net.modules() if m not in trainer.batch_norms)
    moved = [k for k, v in _statistics(learnt).items() if not torch.equal(v, initial[k])]
    assert len(moved) == len(initial) and all(torch.isfinite(learnt[k]).all() for k in moved)


def test_a_skipped_step_leaves_the_learnt_statistics_as_they_were():
    _, trainer = one_step(None, train_bn=True)
    before = {k: v.clone() for k, v in _statistics(trainer.net.state_dict()).items()}
    poisoned = tiny_batch(2)
    poisoned["rgb"][0, 1] = float("nan")
    assert trainer.do_pass(poisoned, 1).skipped == "loss"
    after = _statistics(trainer.net.state_dict())
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_channels_last_training_keeps_nhwc_parameters_and_the_contiguous_update():
    """--memory_format: auto is channels_last with --amp only; a channels_last step computes the NCHW gradients, up to rounding."""
    assert use_channels_last("auto", amp=True) and not use_channels_last("auto", amp=False)
    assert use_channels_last("channels_last", amp=False) and not use_channels_last("contiguous", amp=True)
    _, contiguous = one_step(None)
    _, trainer = one_step(None, channels_last=True)
    conv = next(p for p in trainer.net.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert all(s["exp_avg"].is_contiguous(memory_format=torch.channels_last) for s in trainer.optimizer.state.values()
               if s["exp_avg"].dim() == 4 and s["exp_avg"].shape[-1] > 1)
    # The gradients agree up to rounding: the global norm to 1e-4, each tensor to 2 % of its largest element (measured
    # 0.6 %: the bootstrapped cross-entropy keeps the hardest pixels, a choice rounding can change at the margin), with a
    # floor of 1e-6 of the largest gradient for tensors whose gradient is zero up to rounding (kv_m_f16.key_proj.bias:
    # a bias on every memory key shifts all affinities of a query alike, which the softmax cancels; measured 5.5e-13,
    # and 90 % apart between the two layouts on an AVX2 AMD EPYC).
    # The weights after Adam's first step need not agree: it moves each weight by about the learning rate in the sign of
    # its gradient, and a gradient near 0 may change sign.
    pairs = [(a.grad, b.grad) for a, b in zip(contiguous.net.parameters(), trainer.net.parameters()) if a.grad is not None]
    norm_a, norm_b = (torch.sqrt(sum((g**2).sum() for g in grads)) for grads in zip(*pairs))
    assert abs(norm_a - norm_b) < 1e-4 * norm_a
    floor = 1e-6 * max(a.abs().max() for a, _ in pairs)
    assert all((a - b).abs().max() <= 0.02 * a.abs().max() + floor for a, b in pairs)


def test_amp_trainer_runs_the_forward_in_bfloat16_and_keeps_float32_weights():
    """--amp on the CPU: bfloat16 autocast changes the update a little, weights and optimiser stay float32."""

    fp32, _ = one_step(None)
    bf16, trainer = one_step(torch.bfloat16)
    assert all(v.dtype == fp32[k].dtype for k, v in bf16.items())
    assert all(s["exp_avg"].dtype == torch.float32 for s in trainer.optimizer.state.values())
    changed = [k for k in fp32 if fp32[k].is_floating_point() and not torch.equal(fp32[k], bf16[k])]
    assert changed  # the forward really ran in bfloat16
    assert max((fp32[k] - bf16[k]).abs().max().item() for k in changed) < 1e-2
