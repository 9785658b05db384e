"""Compare this project's DAVIS masks with those of the official QDMN code, pixel by pixel.

Usage (from anywhere; the official code is a user's clone of yongliu20/QDMN)::

    python scripts/compare_official.py --official_repo ~/src/QDMN --model saves/QDMN.pth \\
        --davis data/DAVIS/2017 --split val [--use_km] [--no_top] [--fix_eviction]

The official code compared is commit ``--official_commit`` (default: HEAD of the
official repository, 301f7bf, the code users clone). When ``--official_repo`` is a git
clone (or a bare git directory) that commit is extracted from it with ``git archive``,
whatever is checked out; a folder without git metadata is copied as it is and its commit
is reported as unknown.

Both implementations run on the CPU, one after the other, in subprocesses:

* the official ``eval_davis.py`` (``eval_davis_2016.py`` with ``--year 2016``) runs from a
  temporary copy of the clone's ``.py`` files (the clone itself is never modified). A
  small ``sitecustomize.py``, put first on ``PYTHONPATH``, makes it run without CUDA or
  internet: ``.cuda()`` and ``torch.cuda.synchronize()`` become no-ops, tensors created
  with ``device='cuda'`` are created on the CPU, ``torch.load`` maps to the CPU, and the
  ImageNet download behind ``pretrained=True`` returns a fresh torchvision ResNet-50
  state dict (the checkpoint overwrites every weight anyway);
* the memory settings are made equal on both sides: the copy's source text is patched
  (admission threshold ``score > …``, ``self.memory_thr = …``, ``mem_freq=…``, the QAM
  activation of ``Score``) where a value is given, and otherwise the value found in the
  official source is passed to this project. ``--fix_eviction`` also patches the known
  eviction defect of the official code (it deletes memory slot ``pos`` where slot 0 is
  the annotated frame; this project deletes the intended frame, i.e. slot ``pos + 1``);
* the frame-quality rule: the official DAVIS core divides a propagated frame's mean
  score by the annotated frame's non-zero mean; at HEAD the mean is over all objects
  (the zero filter of propagated frames is commented out), in 1c289dd over the non-zero
  ones. The script reads which from the source and passes ``--quality_mean all`` or
  ``nonzero`` (and ``--quality_base annotated``) to this project. ``--zero_filter on/off``
  patches that line of the copy; ``--project_quality_mean`` runs this project with
  another rule. Both exist to show that the comparison tells the rules apart;
* this project's ``eval_davis.py`` / ``eval_davis_2016.py`` then runs with the same flags,
  ``--official_kernels``, and the same number of CPU threads (``--threads``, default 1):
  a random network's probabilities are nearly flat, so a different reduction order
  alone flips a few pixels.

The official masks hold object *indices* (1..K in the order of the sorted first-frame
labels); they are mapped back to labels before the comparison. The script prints the
share of equal pixels overall and per sequence, and exits 0 when the agreement (overall,
or the worst sequence with ``--criterion min``) reaches ``--min_agreement``, 1 when it
does not, and 2 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from util.image_io import load_mask  # noqa: E402

ACTIVATIONS = ("relu", "sigmoid")
QUALITY_MEANS = ("all", "nonzero")
OFFICIAL_HEAD = "301f7bf"  # yongliu20/QDMN at HEAD (2023-04-05), the code users clone
# The zero filter of a propagated frame's scores in the official DAVIS core's do_pass.
ZERO_FILTER_RE = r"(?m)^([ \t]*)(#[ \t]*)?(scores = list\(filter\(lambda a: a != 0, scores\)\))"

# Injected into the official run. It must stay free of official code.
SITECUSTOMIZE = textwrap.dedent(
    '''
    """CPU/offline shims for running the official QDMN evaluation (written by compare_official.py)."""
    import functools
    import importlib.util
    import os
    import sys
    import types

    import numpy
    import torch

    _CPU = torch.device("cpu")


    def _is_cuda(device):
        if isinstance(device, str):
            return device.startswith("cuda")
        return isinstance(device, torch.device) and device.type == "cuda"


    def _cpu_factory(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if _is_cuda(kwargs.get("device")):
                kwargs["device"] = _CPU
            return fn(*args, **kwargs)
        return wrapper


    for _name in ("zeros", "ones", "empty", "full", "tensor", "as_tensor", "arange",
                  "zeros_like", "ones_like", "empty_like", "full_like"):
        setattr(torch, _name, _cpu_factory(getattr(torch, _name)))


    def _cpu_to(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            args = tuple(_CPU if _is_cuda(a) else a for a in args)
            if _is_cuda(kwargs.get("device")):
                kwargs["device"] = _CPU
            return fn(self, *args, **kwargs)
        return wrapper


    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.Tensor.to = _cpu_to(torch.Tensor.to)
    torch.nn.Module.to = _cpu_to(torch.nn.Module.to)
    torch.cuda.synchronize = lambda *args, **kwargs: None

    _load = torch.load


    @functools.wraps(_load)
    def _cpu_load(*args, **kwargs):
        if len(args) < 2:
            kwargs.setdefault("map_location", "cpu")
        return _load(*args, **kwargs)


    torch.load = _cpu_load

    _imagenet = []


    def _offline_load_url(*args, **kwargs):
        """Stands in for the ImageNet download: random ResNet-50 weights (overwritten later)."""
        if not _imagenet:
            try:
                import torchvision

                _imagenet.append(torchvision.models.resnet50(weights=None).state_dict())
            except Exception:
                _imagenet.append({})
        return dict(_imagenet[0])


    import torch.hub
    import torch.utils.model_zoo

    torch.hub.load_state_dict_from_url = _offline_load_url
    torch.utils.model_zoo.load_url = _offline_load_url

    # numpy 2 removed numpy.lib.arraysetops, which official modules.py imports (unused).
    try:
        import numpy.lib.arraysetops  # noqa: F401
    except ImportError:
        _shim = types.ModuleType("numpy.lib.arraysetops")
        for _name in ("isin", "in1d", "unique", "intersect1d", "setdiff1d", "union1d", "setxor1d"):
            if hasattr(numpy, _name):
                setattr(_shim, _name, getattr(numpy, _name))
        sys.modules["numpy.lib.arraysetops"] = _shim
        numpy.lib.arraysetops = _shim

    # eval_davis.py takes its palette from blackswan; use another annotation when absent.
    _palette = os.environ.get("QDMN_COMPARE_PALETTE")
    if _palette:
        import PIL.Image

        _open = PIL.Image.open

        @functools.wraps(_open)
        def _open_with_fallback(fp, *args, **kwargs):
            if isinstance(fp, (str, os.PathLike)):
                name = os.fspath(fp).replace(os.sep, "/")
                if name.endswith("/blackswan/00000.png") and not os.path.exists(fp):
                    fp = _palette
            return _open(fp, *args, **kwargs)

        PIL.Image.open = _open_with_fallback

    # Chain to any other sitecustomize further down the path.
    _here = os.path.dirname(os.path.abspath(__file__))
    for _entry in sys.path:
        if os.path.abspath(_entry or ".") == _here:
            continue
        _candidate = os.path.join(_entry or ".", "sitecustomize.py")
        if os.path.isfile(_candidate):
            _spec = importlib.util.spec_from_file_location("_chained_sitecustomize", _candidate)
            if _spec is not None and _spec.loader is not None:
                _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
            break
    '''
).lstrip()


class CompareError(RuntimeError):
    """A run failed or the inputs cannot be compared."""


@dataclass
class OfficialSettings:
    """Memory/QAM settings of the (patched) official copy: what the project must match."""

    threshold: float
    capacity: int
    mem_freq: int
    qam_activation: str
    eviction_fixed: bool
    quality_mean: str = "all"  # how the official core averages a propagated frame's scores
    commit: str = "unknown"
    patches: list[str] = field(default_factory=list)


@dataclass
class SequenceResult:
    name: str
    frames: int
    pixels: int
    agreeing: int
    first_differing_frame: Optional[str]

    @property
    def agreement(self) -> float:
        return self.agreeing / self.pixels if self.pixels else 1.0


# ---------------------------------------------------------------------------- patching
def _sub_once(pattern: str, replacement: str, text: str, what: str, path: Path) -> str:
    new, count = re.subn(pattern, replacement, text)
    if count == 0:
        raise CompareError(f"{path}: cannot find {what} to patch (pattern {pattern!r}); is this the yongliu20/QDMN code?")
    return new


def git_dir(repo: Path) -> Optional[Path]:
    """The git directory of a clone or a bare repository; None for a plain folder."""
    if (repo / ".git").exists():
        return repo / ".git"
    if (repo / "HEAD").is_file() and (repo / "objects").is_dir():
        return repo
    return None


def copy_official(repo: Path, dest: Path, commit: str) -> str:
    """Put the official Python files into ``dest``: ``commit`` when ``repo`` is a git repository
    (returns its full hash), else the folder's files as they are (returns "unknown")."""
    gd = git_dir(repo)
    if gd is not None:
        git = ["git", "--git-dir", str(gd)]
        resolved = subprocess.run([*git, "rev-parse", "--verify", f"{commit}^{{commit}}"], capture_output=True, text=True)
        if resolved.returncode != 0:
            raise CompareError(f"{repo}: commit {commit} not found ({resolved.stderr.strip()}); fetch it or pass --official_commit")
        full = resolved.stdout.strip()
        archive = dest.parent / "official.tar"
        with open(archive, "wb") as out:
            if subprocess.run([*git, "archive", "--format=tar", full], stdout=out).returncode != 0:
                raise CompareError(f"{repo}: git archive {full} failed")
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".py")]
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
        archive.unlink()
        return full
    print(f"warning: {repo} has no git metadata; comparing its files as they are (commit unknown)", file=sys.stderr)
    for src in repo.rglob("*.py"):
        rel = src.relative_to(repo)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return "unknown"


def patch_zero_filter(core: str, zero_filter: str, core_path: Path, patches: list[str]) -> tuple[str, str]:
    """Read (and with ``zero_filter`` on/off, set) the official rule for a propagated frame's
    mean score; returns the new source and ``"nonzero"`` (filter active) or ``"all"``."""
    found = re.search(ZERO_FILTER_RE, core)
    if found is None:
        raise CompareError(f"{core_path}: the zero filter of a propagated frame's scores not found")
    active = found.group(2) is None
    if zero_filter == "as_released":
        return core, "nonzero" if active else "all"
    want = zero_filter == "on"
    if want != active:
        line = rf"\g<1>{'' if want else '# '}\g<3>"
        core = re.sub(ZERO_FILTER_RE, line, core, count=1)
        patches.append(f"zero filter of propagated frames {'on' if active else 'off'} -> {zero_filter}")
    return core, "nonzero" if want else "all"


def patch_official(
    copy: Path,
    threshold: Optional[float],
    capacity: Optional[int],
    mem_freq: Optional[int],
    qam_activation: Optional[str],
    fix_eviction: bool,
    zero_filter: str = "as_released",
) -> OfficialSettings:
    """Patch the copy's memory settings where given; read them from the source otherwise."""
    core_path = copy / "inference_core.py"
    modules_path = copy / "model" / "modules.py"
    for p in (core_path, modules_path):
        if not p.is_file():
            raise CompareError(f"{p}: not found; --official_repo should be a clone of yongliu20/QDMN")
    core = core_path.read_text()
    patches: list[str] = []

    thr_re = r"score\s*>\s*([0-9]*\.?[0-9]+)"
    found = re.search(thr_re, core)
    if found is None:
        raise CompareError(f"{core_path}: admission test 'score > <threshold>' not found")
    if threshold is not None:
        core = _sub_once(thr_re, f"score > {threshold!r}", core, "the admission threshold", core_path)
        patches.append(f"threshold {found.group(1)} -> {threshold!r}")
    else:
        threshold = float(found.group(1))

    cap_re = r"self\.memory_thr\s*=\s*(\d+)"
    found = re.search(cap_re, core)
    if found is None:
        raise CompareError(f"{core_path}: 'self.memory_thr = <n>' not found")
    if capacity is not None:
        core = _sub_once(cap_re, f"self.memory_thr = {capacity}", core, "memory_thr", core_path)
        patches.append(f"memory_thr {found.group(1)} -> {capacity}")
    else:
        capacity = int(found.group(1))

    freq_re = r"(def __init__\([^)]*mem_freq\s*=\s*)(\d+)"
    found = re.search(freq_re, core)
    if found is None:
        raise CompareError(f"{core_path}: InferenceCore.__init__(..., mem_freq=<n>) not found")
    if mem_freq is not None:
        core = _sub_once(freq_re, rf"\g<1>{mem_freq}", core, "mem_freq", core_path)
        patches.append(f"mem_freq {found.group(2)} -> {mem_freq}")
    else:
        mem_freq = int(found.group(2))

    if fix_eviction:
        for name in ("keys", "values"):
            pattern = rf"{name}\[:,\s*:,\s*:pos\],\s*{name}\[:,\s*:,\s*pos\s*\+\s*1:\]"
            core = _sub_once(pattern, f"{name}[:, :, :pos+1], {name}[:, :, pos+2:]", core, f"the eviction of {name}", core_path)
        patches.append("eviction deletes slot pos+1 (the evicted frame; slot 0 is the annotated frame)")
    core, quality_mean = patch_zero_filter(core, zero_filter, core_path, patches)
    core_path.write_text(core)

    modules = modules_path.read_text()
    act_re = r"x\s*=\s*(torch\.sigmoid|F\.relu|torch\.relu)\(self\.fc([12])\(x\)\)"
    acts = re.findall(act_re, modules)
    if len(acts) != 2:
        raise CompareError(f"{modules_path}: Score.forward activations after fc1/fc2 not found")
    current = {"torch.sigmoid": "sigmoid", "F.relu": "relu", "torch.relu": "relu"}
    found_acts = {current[a] for a, _ in acts}
    if qam_activation is not None:
        fn = "torch.sigmoid" if qam_activation == "sigmoid" else "F.relu"
        modules = re.sub(act_re, lambda m: f"x = {fn}(self.fc{m.group(2)}(x))", modules)
        modules_path.write_text(modules)
        patches.append(f"QAM activation {'/'.join(sorted(found_acts))} -> {qam_activation}")
    elif len(found_acts) != 1:
        raise CompareError(f"{modules_path}: fc1 and fc2 use different activations; pass --qam_activation")
    else:
        qam_activation = found_acts.pop()
    return OfficialSettings(threshold, capacity, mem_freq, qam_activation, fix_eviction, quality_mean, patches=patches)


# ---------------------------------------------------------------------------- running
def first_annotation(davis: Path, year: int, split: str) -> Path:
    """The first sequence's first-frame annotation (palette fallback for the official run)."""
    if year == 2016:
        imset = davis / ".." / "2017" / "trainval" / "ImageSets" / "2016" / f"{split}.txt"
        root = davis
    else:
        folder = "trainval" if split == "val" else "test-dev"
        imset = davis / folder / "ImageSets" / "2017" / ("val.txt" if split == "val" else "test-dev.txt")
        root = davis / folder
    names = [line.strip() for line in imset.read_text().splitlines() if line.strip()] if imset.is_file() else []
    if not names:
        raise CompareError(f"{imset}: sequence list not found or empty; check --davis and --year")
    return root / "Annotations" / "480p" / names[0] / "00000.png"


def run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, label: str) -> None:
    print(f"[{label}] {' '.join(cmd)}", flush=True)
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise CompareError(f"{label} run failed (exit {proc.returncode}); log {log}:\n{tail}")


def thread_env(threads: int) -> dict[str, str]:
    """The environment with ``threads`` intra-op threads (the same float reduction order on both sides)."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def run_official(args: argparse.Namespace, copy: Path, shims: Path, output: Path, log: Path) -> None:
    env = thread_env(args.threads)
    env["PYTHONPATH"] = os.pathsep.join([str(shims), str(copy), *filter(None, [env.get("PYTHONPATH")])])
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["QDMN_COMPARE_PALETTE"] = str(first_annotation(args.davis, args.year, args.split))
    if args.year == 2016:
        cmd = [sys.executable, "eval_davis_2016.py"]
    else:
        cmd = [sys.executable, "eval_davis.py", "--split", args.split]
        if args.use_km:
            cmd.append("--use_km")
    cmd += ["--model", str(args.model), "--davis", str(args.davis), "--output", str(output)]
    if args.no_top:
        cmd.append("--no_top")
    run(cmd, copy, env, log, "official")


def run_project(args: argparse.Namespace, settings: OfficialSettings, output: Path, log: Path) -> None:
    script = "eval_davis_2016.py" if args.year == 2016 else "eval_davis.py"
    cmd = [sys.executable, str(ROOT / script), "--model", str(args.model), "--davis", str(args.davis), "--output", str(output)]
    if args.year != 2016:
        cmd += ["--split", args.split]
        if args.use_km:
            cmd.append("--use_km")
    if args.no_top:
        cmd.append("--no_top")
    cmd += [
        "--official_kernels",  # the official arithmetic: NCHW and the dense top-k readout
        "--device",
        "cpu",
        "--threshold",
        repr(settings.threshold),
        "--capacity",
        str(settings.capacity),
        "--mem_freq",
        str(settings.mem_freq),
        "--qam_activation",
        settings.qam_activation,
        "--quality_mean",
        args.project_quality_mean or settings.quality_mean,
        "--quality_base",
        "annotated",
        "--threads",
        str(args.threads),
    ]
    run(cmd, ROOT, thread_env(args.threads), log, "project")


# ---------------------------------------------------------------------------- comparing
def official_labels(davis: Path, year: int, split: str, sequence: str) -> Optional[np.ndarray]:
    """Index -> label map of the official 2017 output (None for 2016: both are 0/255)."""
    if year == 2016:
        return None
    folder = "trainval" if split == "val" else "test-dev"
    first = load_mask(davis / folder / "Annotations" / "480p" / sequence / "00000.png")
    labels = [int(v) for v in np.unique(first) if v != 0]
    return np.asarray([0, *labels], dtype=np.int64)


def compare_outputs(official: Path, project: Path, args: argparse.Namespace) -> list[SequenceResult]:
    sequences = sorted(p.name for p in official.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not sequences:
        raise CompareError(f"{official}: the official run wrote no sequence")
    results = []
    for seq in sequences:
        lut = official_labels(args.davis, args.year, args.split, seq)
        frames = sorted(p.name for p in (official / seq).glob("*.png"))
        total = agree = 0
        first_bad = None
        for name in frames:
            ours_path = project / seq / name
            if not ours_path.is_file():
                raise CompareError(f"{ours_path}: missing from the project's output")
            theirs = load_mask(official / seq / name).astype(np.int64)
            if lut is not None:
                if theirs.max() >= len(lut):
                    raise CompareError(f"{official / seq / name}: object index {theirs.max()} beyond the {len(lut) - 1} labels")
                theirs = lut[theirs]
            ours = load_mask(ours_path).astype(np.int64)
            if ours.shape != theirs.shape:
                raise CompareError(f"{seq}/{name}: size {ours.shape} (project) vs {theirs.shape} (official)")
            same = int((ours == theirs).sum())
            total += ours.size
            agree += same
            if same != ours.size and first_bad is None:
                first_bad = name
        extra = sorted({p.name for p in (project / seq).glob("*.png")} - set(frames))
        if extra:
            raise CompareError(f"{project / seq}: frames the official run did not write: {extra[:3]}")
        results.append(SequenceResult(seq, len(frames), total, agree, first_bad))
    missing = sorted({p.name for p in project.iterdir() if p.is_dir() and not p.name.startswith(".")} - set(sequences))
    if missing:
        raise CompareError(f"sequences only the project wrote: {missing}")
    return results


def report(results: list[SequenceResult], settings: OfficialSettings, project_quality_mean: Optional[str] = None) -> tuple[float, float]:
    total = sum(r.pixels for r in results)
    agree = sum(r.agreeing for r in results)
    overall = agree / total if total else 1.0
    worst = min(r.agreement for r in results)
    print(f"official code: commit {settings.commit}")
    print(
        f"settings: threshold {settings.threshold}, capacity {settings.capacity}, mem_freq {settings.mem_freq}, "
        f"QAM {settings.qam_activation}, official eviction {'fixed' if settings.eviction_fixed else 'as released'}, "
        f"quality mean official {settings.quality_mean} / project {project_quality_mean or settings.quality_mean}"
    )
    for p in settings.patches:
        print(f"  official copy patched: {p}")
    width = max(len(r.name) for r in results)
    for r in results:
        where = f"  first difference at {r.first_differing_frame}" if r.first_differing_frame else ""
        print(f"  {r.name:<{width}}  {r.frames:4d} frames  agreement {100 * r.agreement:9.5f}%{where}")
    print(f"overall agreement {100 * overall:.5f}% ({agree}/{total} pixels), minimum per sequence {100 * worst:.5f}%")
    return overall, worst


# ---------------------------------------------------------------------------- main
def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--official_repo",
        type=Path,
        default=os.environ.get("QDMN_OFFICIAL_REPO"),
        help="a clone (or bare git directory) of yongliu20/QDMN, left untouched (default: $QDMN_OFFICIAL_REPO)",
    )
    parser.add_argument(
        "--official_commit",
        default=OFFICIAL_HEAD,
        help=f"official commit to run when the repo has git metadata (default {OFFICIAL_HEAD}, HEAD)",
    )
    parser.add_argument("--model", required=True, type=Path, help="bare state dict in the official layout")
    parser.add_argument("--davis", required=True, type=Path, help="DAVIS/2017 root (DAVIS/2016 with --year 2016)")
    parser.add_argument("--split", default="val", choices=("val", "testdev"), help="2017 split (2016: val)")
    parser.add_argument("--year", type=int, default=2017, choices=(2016, 2017))
    parser.add_argument("--use_km", action="store_true", help="kernelised memory read (2017 only, as officially)")
    parser.add_argument("--no_top", action="store_true", help="full softmax instead of top-50")
    parser.add_argument("--threshold", type=float, default=None, help="admission threshold for both (default: the official's)")
    parser.add_argument("--capacity", type=int, default=None, help="memory_thr for both (default: the official's)")
    parser.add_argument("--mem_freq", type=int, default=None, help="admission gap for both (default: the official's)")
    parser.add_argument(
        "--qam_activation", choices=ACTIVATIONS, default=None, help="QAM activation after fc1/fc2 for both (default: the official source's)"
    )
    parser.add_argument(
        "--fix_eviction",
        action="store_true",
        help="patch the official eviction to delete the evicted frame (slot pos+1), as this project does",
    )
    parser.add_argument(
        "--zero_filter",
        choices=("as_released", "on", "off"),
        default="as_released",
        help="the official DAVIS core's zero filter of propagated frames' scores (commented out at HEAD)",
    )
    parser.add_argument(
        "--project_quality_mean",
        choices=QUALITY_MEANS,
        default=None,
        help="run this project with this --quality_mean (default: the official copy's rule)",
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both runs (equal counts give equal float rounding)")
    parser.add_argument("--min_agreement", type=float, default=0.999, help="pass mark, a share in [0, 1]")
    parser.add_argument(
        "--criterion", choices=("overall", "min"), default="overall", help="judge the overall agreement or the worst sequence's"
    )
    parser.add_argument("--work_dir", type=Path, default=None, help="keep the copy, outputs and logs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.year == 2016 and args.use_km:
        parser.error("--use_km: the official eval_davis_2016.py has no kernelised read")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, not {args.threads}")
    if args.year == 2016 and args.split != "val":
        parser.error("--year 2016 has only the val split")
    if args.official_repo is None:
        parser.error("--official_repo (or $QDMN_OFFICIAL_REPO) is required: a clone of yongliu20/QDMN")
    args.official_repo = Path(args.official_repo)
    for name in ("official_repo", "model", "davis"):
        setattr(args, name, getattr(args, name).expanduser().resolve())
    if git_dir(args.official_repo) is None and not (args.official_repo / "inference_core.py").is_file():
        parser.error(f"--official_repo {args.official_repo}: no inference_core.py; pass a clone of yongliu20/QDMN")
    if not args.model.is_file():
        parser.error(f"--model {args.model}: file not found")
    if not args.davis.is_dir():
        parser.error(f"--davis {args.davis}: folder not found")
    return args


def compare(args: argparse.Namespace, work: Path) -> tuple[float, float, list[SequenceResult], OfficialSettings]:
    copy, shims = work / "official_copy", work / "shims"
    for d in (copy, shims, work / "out_official", work / "out_project"):
        if d.exists():
            shutil.rmtree(d)
    copy.parent.mkdir(parents=True, exist_ok=True)
    commit = copy_official(args.official_repo, copy, args.official_commit)
    settings = patch_official(copy, args.threshold, args.capacity, args.mem_freq, args.qam_activation, args.fix_eviction, args.zero_filter)
    settings.commit = commit
    shims.mkdir(parents=True)
    (shims / "sitecustomize.py").write_text(SITECUSTOMIZE)
    run_official(args, copy, shims, work / "out_official", work / "official.log")
    run_project(args, settings, work / "out_project", work / "project.log")
    results = compare_outputs(work / "out_official", work / "out_project", args)
    overall, worst = report(results, settings, args.project_quality_mean)
    return overall, worst, results, settings


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    temp = None
    if args.work_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="qdmn_compare_")
        work = Path(temp.name)
    else:
        work = args.work_dir.expanduser().resolve()
        work.mkdir(parents=True, exist_ok=True)
    try:
        overall, worst, results, settings = compare(args, work)
    except CompareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if temp is not None:
            temp.cleanup()
    if args.json is not None:
        payload = {
            "overall": overall,
            "minimum": worst,
            "settings": asdict(settings),
            "sequences": [{**asdict(r), "agreement": r.agreement} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    score = overall if args.criterion == "overall" else worst
    passed = score >= args.min_agreement
    print(
        f"{'PASS' if passed else 'FAIL'}: {args.criterion} agreement {100 * score:.5f}% "
        f"{'>=' if passed else '<'} {100 * args.min_agreement:.3f}%"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
