"""The code's structure: argparse stays at the edges, no argument namespace reaches the evaluation loop, the engine or the
model, and every flag reaches its frozen configuration."""

from __future__ import annotations

import argparse
import ast
import functools
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pytest

from evaluation.arguments import add_eval_args, eval_config
from evaluation.config import EvalConfig, memory_config
from evaluation.official import OFFICIAL_HEAD
from model.memory_policy import DAVIS_MEMORY
from training.config import TrainConfig
from training.hyper_para import build_parser, parse_config

ROOT = Path(__file__).resolve().parents[1]
ENTRY_SCRIPTS = {"train.py", "eval_davis.py", "eval_davis_2016.py", "eval_youtube.py", "eval_generic.py", "demo.py", "app.py"}
DECLARING_MODULES = {"evaluation/arguments.py", "training/hyper_para.py"}  # the one module per side that declares flags


def source_files() -> list[Path]:
    skip = {"tests", "data", "outputs", "saves", "log", ".git"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def imports_argparse(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def test_argparse_is_imported_only_by_entry_scripts_and_the_declaring_modules():
    allowed = ENTRY_SCRIPTS | DECLARING_MODULES
    found = {p.relative_to(ROOT).as_posix() for p in source_files() if imports_argparse(p)}
    assert found, "the scan found no argparse import at all: it does not read the sources"
    assert {"eval_davis.py", "evaluation/arguments.py", "training/hyper_para.py"} <= found
    offenders = sorted(f for f in found if f not in allowed and not f.startswith("scripts/"))
    assert not offenders, f"argparse imported outside the entry scripts and the declaring modules: {offenders}"


# ----------------------------------------------------------------------------- no namespace below the entry scripts
WATCHED = ("engine", "model", "evaluation")  # evaluation/arguments.py is the one evaluation module that sees the namespace


@functools.cache
def watched(filename: str) -> str:
    """The watched package ``filename`` belongs to, else ''."""
    try:
        parts = Path(filename).resolve().relative_to(ROOT).parts
    except ValueError:
        return ""
    return parts[0] if parts and parts[0] in WATCHED and parts != ("evaluation", "arguments.py") else ""


class Watch(list):
    """The calls that received a namespace; ``entered``: the watched packages called at all."""

    entered: set[str]


@contextmanager
def namespace_watch():
    """Every call into a watched module (in any thread) whose arguments include an argparse.Namespace is recorded."""
    seen = Watch()
    seen.entered = set()

    def profile(frame, event, _arg):
        package = watched(frame.f_code.co_filename) if event == "call" else ""
        if package:
            seen.entered.add(package)
            if any(isinstance(v, argparse.Namespace) for v in frame.f_locals.values()):
                seen.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


def test_the_watch_sees_a_namespace_passed_into_the_evaluation_package():
    with namespace_watch() as seen:
        with pytest.raises(AttributeError):
            memory_config(argparse.Namespace(mem_freq=5))
    assert seen and seen[0].endswith(":memory_config")


@pytest.fixture(scope="module")
def tiny_davis(tmp_path_factory) -> tuple[Path, Path]:
    from datasets.synthetic import write_davis2017
    from scripts import make_random_checkpoint

    root = tmp_path_factory.mktemp("structure")
    write_davis2017(root, seed=5, num_videos=2, num_frames=3, height=48, width=64, max_objects=2, splits=("val",))
    ckpt = root / "lite.pth"
    make_random_checkpoint.main(["--out", str(ckpt), "--config", "lite", "--qam_activation", "sigmoid"])
    return root / "2017", ckpt


@pytest.mark.parametrize("shards", [None, ("0/2", "1/2")], ids=["one process", "two shards"])
def test_no_namespace_reaches_the_engine_the_model_or_the_evaluation_loop(tiny_davis, tmp_path, shards):
    import eval_davis

    davis, ckpt = tiny_davis
    out = tmp_path / "out"
    argv = ["--model", str(ckpt), "--davis", str(davis), "--output", str(out), "--device", "cpu", "--threads", "1", "--zip",
            "--stats_json", str(tmp_path / "stats.json")]
    with namespace_watch() as seen:
        for shard in shards or [None]:
            eval_davis.main(argv + (["--shard", shard] if shard else []))
    assert (tmp_path / "out.zip").is_file()  # the run went through to its finish
    assert seen.entered == set(WATCHED)
    assert not seen, f"an argparse.Namespace reached {sorted(set(seen))}"


# ----------------------------------------------------------------------------- every flag reaches its configuration
def eval_parser(distributed: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_eval_args(parser, DAVIS_MEMORY, distributed=distributed)
    return parser


def test_every_evaluation_flag_is_a_field_of_the_config():
    dests = {a.dest for a in eval_parser()._actions if a.dest != "help"}
    assert dests <= {f.name for f in fields(EvalConfig)}


def test_evaluation_flags_reach_the_config_and_a_script_without_shard_runs_in_one_process():
    argv = ["--output", "o", "--model", "m.pth", "--device", "cpu", "--use_km", "--no_top", "--top_k", "7", "--mem_freq", "2",
            "--threshold", "0.5", "--capacity", "3", "--zero_base", "frequency", "--quality_mean", "nonzero", "--quality_base",
            "first_propagated", "--qam_activation", "sigmoid", "--overwrite", "--amp", "--force_amp", "--threads", "2",
            "--official_kernels", "--compile", "--stats_json", "s.json", "--memory_policy", "fifo",
            "--max_pixels", "1000", "--shard", "1/3"]
    parser = eval_parser()
    config = eval_config(parser.parse_args(argv), zip=True, ground_truth="gt")
    defaults = eval_config(parser.parse_args(["--output", "other"]))
    unchanged = [f.name for f in fields(EvalConfig) if getattr(config, f.name) == getattr(defaults, f.name) and f.name != "distributed"]
    assert not unchanged, f"flags that did not reach EvalConfig: {unchanged}"
    assert config.distributed and config.shard == "1/3" and config.top_k == 7
    single = eval_config(eval_parser(distributed=False).parse_args(["--output", "o"]))
    assert not single.distributed and single.shard is None


def test_every_training_flag_reaches_the_config():
    parser = build_parser()
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert dests == {f.name for f in fields(TrainConfig)} - {"single_object"}
    everything = ["--benchmark", "--deterministic", "--static_root", "s", "--bl_root", "b", "--yv_root", "y", "--davis_root", "d",
                  "--no_subset", "--size", "32", "--crop_width", "64", "--num_workers", "1", "--threads", "2", "--stage", "2",
                  "-b", "3", "-i", "10", "--steps", "5", "7", "--lr", "1e-3", "--gamma", "0.5", "--seed", "3", "--amp",
                  "--force_amp", "--memory_format", "channels_last", "--train_bn", "--compile", "--device", "cpu", "--model_config", "lite",
                  "--qam_activation", "relu", "--imagenet_weights", "w.pth", "--load_model", "m.pth", "--id", "x", "--debug",
                  "--save_every", "4", "--stop_at", "6", "--local-rank", "1"]
    defaults = parse_config([])
    changed = set()
    for argv in (everything, ["--mirror_init"], ["--load_network", "n.pth"]):  # three runs: these flags exclude each other
        config = parse_config(argv)
        changed |= {f.name for f in fields(TrainConfig) if getattr(config, f.name) != getattr(defaults, f.name)}
    assert changed == dests | {"single_object"}  # single_object follows from --stage
    assert parse_config(everything).steps == (5, 7) and parse_config(["--stage", "1"]).steps == (450000,)


def test_help_strings_are_one_short_line():
    for parser in (eval_parser(), build_parser()):
        for action in parser._actions:
            if action.help and action.help != argparse.SUPPRESS:
                assert "\n" not in action.help and len(action.help) <= 100, f"{action.option_strings}: {action.help!r}"


# ----------------------------------------------------------------------------- the official code's commit ids
COMMIT_HOMES = {"evaluation/official.py", "docs/OFFICIAL_AGREEMENT.md"}  # where the official code is named for comparison
HEX_TOKEN = re.compile(r"\b[0-9a-f]{7,40}\b", re.IGNORECASE)


def official_commit_prefixes() -> set[str]:
    """The 7-character prefixes of the official repository's commits that docs/OFFICIAL_AGREEMENT.md names."""
    text = (ROOT / "docs" / "OFFICIAL_AGREEMENT.md").read_text()
    return {t[:7].lower() for t in HEX_TOKEN.findall(text) if re.search(r"[a-fA-F]", t) and re.search(r"[0-9]", t)}


def commit_ids_in(path: Path, prefixes: set[str]) -> list[str]:
    return [f"{path.relative_to(ROOT).as_posix()}:{n}: {t}" for n, line in enumerate(path.read_text().splitlines(), 1)
            for t in HEX_TOKEN.findall(line) if t[:7].lower() in prefixes]


def test_official_commit_ids_appear_only_where_the_official_code_is_named_for_comparison():
    prefixes = official_commit_prefixes()
    assert {OFFICIAL_HEAD[:7], "301f7bf", "1c289dd"} <= prefixes, "docs/OFFICIAL_AGREEMENT.md no longer names the commits"
    skip = {"tests", "data", "outputs", "saves", "log"}
    files = [p for suffix in ("py", "md", "sh") for p in ROOT.rglob(f"*.{suffix}")
             if p.is_file() and not any(part in skip or part.startswith(".") for part in p.relative_to(ROOT).parts[:-1])]
    assert ROOT / "README.md" in files  # README.md too
    homes = [p for p in files if p.relative_to(ROOT).as_posix() in COMMIT_HOMES]
    assert len(homes) == len(COMMIT_HOMES) and all(commit_ids_in(p, prefixes) for p in homes), "the scan misses the homes"
    # the side-by-side reports scripts/benchmark.py writes name the official commit they ran: a comparison too
    reports = {p for p in files if p.parent == ROOT / "benchmarks" and p.suffix == ".md" and p.name != "README.md"}
    offenders = [hit for p in sorted(files) if p not in homes and p not in reports for hit in commit_ids_in(p, prefixes)]
    assert not offenders, ("official commit ids outside evaluation/official.py and docs/OFFICIAL_AGREEMENT.md (name "
                           "'the official code at HEAD' and link docs/OFFICIAL_AGREEMENT.md):\n" + "\n".join(offenders))
