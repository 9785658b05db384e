"""Running the official QDMN code beside this project's (``scripts/compare_official.py``):
copy the official repository at a commit, patch it to run on the CPU with chosen memory and
QAM settings (the patches are listed in docs/OFFICIAL_AGREEMENT.md), and describe what the
project must match."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

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


def _number(core: str, pattern: str, group: int, value, replacement, cast, missing: str, what: str, name: str,
            core_path: Path, patches: list[str]) -> tuple[str, object]:
    """The number ``pattern`` finds in ``core`` (its ``group``); with ``value``, that number replaced and the patch recorded."""
    found = re.search(pattern, core)
    if found is None:
        raise CompareError(f"{core_path}: {missing} not found")
    if value is None:
        return core, cast(found.group(group))
    core = _sub_once(pattern, replacement(value), core, what, core_path)
    patches.append(f"{name} {found.group(group)} -> {value!r}")
    return core, value


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

    number = functools.partial(_number, core_path=core_path, patches=patches)
    core, threshold = number(core, r"score\s*>\s*([0-9]*\.?[0-9]+)", 1, threshold, lambda v: f"score > {v!r}", float,
                             "admission test 'score > <threshold>'", "the admission threshold", "threshold")
    core, capacity = number(core, r"self\.memory_thr\s*=\s*(\d+)", 1, capacity, lambda v: f"self.memory_thr = {v}", int,
                            "'self.memory_thr = <n>'", "memory_thr", "memory_thr")
    core, mem_freq = number(core, r"(def __init__\([^)]*mem_freq\s*=\s*)(\d+)", 2, mem_freq, lambda v: rf"\g<1>{v}", int,
                            "InferenceCore.__init__(..., mem_freq=<n>)", "mem_freq", "mem_freq")

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
