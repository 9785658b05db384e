"""Compare this project's DAVIS masks with those of the official QDMN code, pixel by pixel.

Usage (from anywhere; the official code is a user's clone of yongliu20/QDMN)::

    python scripts/compare_official.py --official_repo ~/src/QDMN --model saves/QDMN.pth \\
        --davis data/DAVIS/2017 --split val [--use_km] [--no_top] [--threshold 0.8]

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
* this project's ``eval_davis.py`` / ``eval_davis_2016.py`` then runs with the same flags.

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


def copy_official(repo: Path, dest: Path) -> None:
    """Copy the clone's Python files (only) into ``dest``."""
    for src in repo.rglob("*.py"):
        rel = src.relative_to(repo)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def patch_official(
    copy: Path,
    threshold: Optional[float],
    capacity: Optional[int],
    mem_freq: Optional[int],
    qam_activation: Optional[str],
    fix_eviction: bool,
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
    return OfficialSettings(threshold, capacity, mem_freq, qam_activation, fix_eviction, patches)


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


def run_official(args: argparse.Namespace, copy: Path, shims: Path, output: Path, log: Path) -> None:
    env = dict(os.environ)
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
    ]
    run(cmd, ROOT, dict(os.environ), log, "project")


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


def report(results: list[SequenceResult], settings: OfficialSettings) -> tuple[float, float]:
    total = sum(r.pixels for r in results)
    agree = sum(r.agreeing for r in results)
    overall = agree / total if total else 1.0
    worst = min(r.agreement for r in results)
    print(
        f"settings: threshold {settings.threshold}, capacity {settings.capacity}, mem_freq {settings.mem_freq}, "
        f"QAM {settings.qam_activation}, official eviction {'fixed' if settings.eviction_fixed else 'as released'}"
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
    parser.add_argument("--official_repo", required=True, type=Path, help="a clone of yongliu20/QDMN (left untouched)")
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
    parser.add_argument("--min_agreement", type=float, default=0.999, help="pass mark, a share in [0, 1]")
    parser.add_argument(
        "--criterion", choices=("overall", "min"), default="overall", help="judge the overall agreement or the worst sequence's"
    )
    parser.add_argument("--work_dir", type=Path, default=None, help="keep the copy, outputs and logs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.year == 2016 and args.use_km:
        parser.error("--use_km: the official eval_davis_2016.py has no kernelised read")
    if args.year == 2016 and args.split != "val":
        parser.error("--year 2016 has only the val split")
    for name in ("official_repo", "model", "davis"):
        setattr(args, name, getattr(args, name).expanduser().resolve())
    if not (args.official_repo / "inference_core.py").is_file():
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
    copy_official(args.official_repo, copy)
    settings = patch_official(copy, args.threshold, args.capacity, args.mem_freq, args.qam_activation, args.fix_eviction)
    shims.mkdir(parents=True)
    (shims / "sitecustomize.py").write_text(SITECUSTOMIZE)
    run_official(args, copy, shims, work / "out_official", work / "official.log")
    run_project(args, settings, work / "out_project", work / "project.log")
    results = compare_outputs(work / "out_official", work / "out_project", args)
    overall, worst = report(results, settings)
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
