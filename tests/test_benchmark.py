"""The benchmark scripts run at a tiny size and report every field.

Their ``main(argv)`` runs in-process (``cli``); each measurement is a child process of its own, as in real use.
"""

import json

import pytest

from util.hardware import NATIVE_BF16_ENV


@pytest.mark.slow
def test_benchmark_tiny(tmp_path, cli):
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    cli(
        "scripts.benchmark",
        "--config",
        "lite",
        "--height",
        "32",
        "--width",
        "48",
        "--lengths",
        "3,5",
        "--flop_frames",
        "1",
        "--device",
        "cpu",
        "--json",
        str(out_json),
        "--markdown",
        str(out_md),
        check=True,
    )
    report = json.loads(out_json.read_text())
    first, second = report["results"]
    assert (first["frames"], second["frames"]) == (3, 5)
    for r in report["results"]:
        assert r["fps"] > 0 and r["peak_rss_mib"] > 100 and r["gflop_per_frame"] > 0
        assert r["matmul_peak_gflops"] > 0 and 0 < r["share_of_matmul_peak"]
        assert {"query encoder", "memorise", "memory read", "ASPP + decoder", "reading frames", "writing masks"} <= set(
            r["stages_s_per_frame"]
        )
    table = out_md.read_text()
    assert "Peak RSS ratio 5 / 3 frames" in table and "| 5 |" in table


def _amp_run(cli, tmp_path, *flags: str, native: str) -> tuple[dict, str]:
    out_json = tmp_path / "b.json"
    proc = cli("scripts.benchmark", "--config", "lite", "--height", "32", "--width", "48", "--frames", "3", "--flop_frames", "1",
               "--device", "cpu", "--amp", *flags, "--json", out_json, "--markdown", tmp_path / "b.md", env={NATIVE_BF16_ENV: native},
               check=True)
    return json.loads(out_json.read_text())["results"][0], proc.stderr


def test_benchmark_amp_without_native_bfloat16_runs_float32_with_one_warning(tmp_path, cli):
    result, stderr = _amp_run(cli, tmp_path, native="0")
    assert result["precision"] == "float32" and result["native_bfloat16"] is False
    assert result["matmul_size"] == 2048 and result["cpu_capability"]
    assert len([line for line in stderr.splitlines() if "--amp ignored" in line]) == 1


@pytest.mark.slow  # seconds: in .ci/run (-m ''), out of the default selection
def test_benchmark_forced_amp_sizes_the_emulated_matmul_down(tmp_path, cli):
    """On a CPU without native bfloat16 a 2048^2 bfloat16 matmul takes over a minute: the peak uses a small one."""
    result, _ = _amp_run(cli, tmp_path, "--force_amp", native="0")
    assert result["precision"] == "bfloat16" and result["kernels"] == "fast" and result["gflop_per_frame"] > 0
    assert result["matmul_size"] == 256


@pytest.mark.slow
def test_training_benchmark_tiny(tmp_path, cli):
    """Both precisions where bfloat16 is (said to be) native; --amp reported as skipped where it is not."""
    tiny = ["scripts.benchmark_train", "--configs", "lite", "--batch", "1", "--size", "32", "--iterations", "1", "--warmup", "0",
            "--data_height", "48", "--data_width", "64", "--device", "cpu", "--threads", "1"]
    out = tmp_path / "t.json"
    cli(*tiny, "--json", out, "--markdown", tmp_path / "t.md", env={NATIVE_BF16_ENV: "1"}, check=True)
    report = json.loads(out.read_text())
    assert [r["precision"] for r in report["results"]] == ["float32", "bfloat16"] and not report["skipped"]
    for r in report["results"]:
        assert r["it_per_s"] > 0 and r["peak_rss_mib"] > 100
        assert set(r["parts_s_per_it"]) == {"data loading", "forward", "backward", "optimizer"}
        assert all(v > 0 for v in r["parts_s_per_it"].values())
    cli(*tiny, "--json", out, "--markdown", tmp_path / "t.md", env={NATIVE_BF16_ENV: "0"}, check=True)
    report = json.loads(out.read_text())
    assert [r["precision"] for r in report["results"]] == ["float32"] and "no native bfloat16" in report["skipped"][0]


@pytest.mark.slow
def test_parallel_evaluation_benchmark_tiny(tmp_path, cli):
    """One process × 1 thread against torchrun with 2 × 1, on two tiny videos: a row per layout, every frame counted."""
    out = tmp_path / "p.json"
    cli("scripts.benchmark_eval_parallel", "--configs", "lite", "--layouts", "1x1,2x1", "--videos", "2", "--frames", "lite:3",
        "--sizes", "lite:32x48", "--json", out, "--markdown", tmp_path / "p.md", check=True)
    runs = json.loads(out.read_text())["runs"]
    assert [(r["processes"], r["threads"]) for r in runs] == [(1, 1), (2, 1)]
    assert all(r["frames"] == 6 and r["command_fps"] > 0 and r["loop_fps"] > 0 for r in runs)
    assert "| lite | 6 (32x48) | 2 × 1 |" in (tmp_path / "p.md").read_text()
