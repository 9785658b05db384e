"""CPU capability, the mixed-precision fallback and the thread policy (util/hardware.py)."""

import pytest
import torch

from util import hardware


@pytest.fixture(autouse=True)
def fresh_warning(monkeypatch):
    monkeypatch.setattr(hardware, "_warned_amp_fallback", False)


def test_override_decides_native_bfloat16(monkeypatch):
    monkeypatch.setenv(hardware.NATIVE_BF16_ENV, "0")
    assert not hardware.native_cpu_bfloat16()
    monkeypatch.setenv(hardware.NATIVE_BF16_ENV, "1")
    assert hardware.native_cpu_bfloat16()


def test_detection_needs_the_flag_and_pytorch_avx512_kernels(monkeypatch):
    monkeypatch.delenv(hardware.NATIVE_BF16_ENV, raising=False)
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    monkeypatch.setattr(hardware, "torch_cpu_capability", lambda: "AVX512")
    assert hardware.native_cpu_bfloat16()
    monkeypatch.setattr(hardware, "torch_cpu_capability", lambda: "AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert not hardware.native_cpu_bfloat16()
    monkeypatch.setattr(hardware, "torch_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))  # AVX-512 without BF16
    assert not hardware.native_cpu_bfloat16()


def test_amp_falls_back_to_float32_once_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv(hardware.NATIVE_BF16_ENV, "0")
    cpu = torch.device("cpu")
    assert hardware.effective_amp(cpu, True) is False
    assert hardware.effective_amp(cpu, True) is False
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: --amp ignored")
    assert hardware.effective_amp(cpu, True, force=True) is True
    assert hardware.effective_amp(cpu, False) is False
    monkeypatch.setenv(hardware.NATIVE_BF16_ENV, "1")
    assert hardware.effective_amp(cpu, True) is True
    assert capsys.readouterr().err == ""


def test_cuda_amp_is_never_dropped(monkeypatch):
    monkeypatch.setenv(hardware.NATIVE_BF16_ENV, "0")
    assert hardware.effective_amp(torch.device("cuda"), True) is True
    assert hardware.amp_dtype(torch.device("cuda")) == torch.float16
    assert hardware.amp_dtype(torch.device("cpu")) == torch.bfloat16


@pytest.mark.parametrize(
    ("cpus", "ranks", "device", "expected"),
    [
        (2, 1, "cpu", (0, 2)),  # this project's machine: no workers competing with the network
        (16, 1, "cpu", (4, 12)),
        (16, 2, "cpu", (2, 6)),
        (3, 2, "cpu", (0, 1)),
        (32, 4, "cuda", (8, 4)),
        (2, 1, "cuda", (2, 2)),
    ],
)
def test_training_parallelism_shares_the_cpus(monkeypatch, cpus, ranks, device, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(hardware, "available_cpus", lambda: cpus)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(ranks))
    workers, threads = hardware.training_parallelism(device)
    assert (workers, threads) == expected
    assert workers + (threads if device == "cpu" else 0) <= max(cpus // ranks, 1) or device == "cuda"
    assert hardware.training_parallelism(device, workers=1, threads=3) == (1, 3)


def test_set_threads_defaults_to_the_affinity(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(hardware, "available_cpus", lambda: 1)
        assert hardware.set_threads(None) == 1 and torch.get_num_threads() == 1
        assert hardware.set_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value, expected", [("3", 3), ("1", 1), ("0", None), ("-2", None), ("two", None), ("", None)])
def test_omp_num_threads_is_the_default_when_it_is_a_positive_integer(monkeypatch, value, expected):
    """The README's advice `OMP_NUM_THREADS=1` holds for every entry point; --threads still wins."""
    from evaluation import distributed

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(hardware, "available_cpus", lambda: 16)
    try:
        assert hardware.omp_threads() == expected
        assert hardware.set_threads(None) == (expected or 16) == torch.get_num_threads()
        assert hardware.set_threads(5) == 5
        assert hardware.training_parallelism("cpu") == (2, expected or 6)
        assert hardware.training_parallelism("cuda") == (8, expected or 4)
        assert hardware.training_parallelism("cpu", threads=7) == (2, 7)
        assert distributed.plan_threads(None) == (expected or 8) and distributed.plan_threads(3) == 3
    finally:
        torch.set_num_threads(before)
