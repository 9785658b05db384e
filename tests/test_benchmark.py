"""The benchmark script runs at a tiny size and reports every field."""

import json

from tests.test_eval_cli import run


def test_benchmark_tiny(tmp_path):
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    run(
        "scripts/benchmark.py",
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


def test_benchmark_tiny_amp_with_flops(tmp_path):
    out_json = tmp_path / "b.json"
    run("scripts/benchmark.py", "--config", "lite", "--height", "32", "--width", "48", "--frames", "3", "--flop_frames", "1",
        "--device", "cpu", "--amp", "--json", str(out_json), "--markdown", str(tmp_path / "b.md"))
    result = json.loads(out_json.read_text())["results"][0]
    assert result["precision"] == "bfloat16" and result["kernels"] == "fast" and result["gflop_per_frame"] > 0
