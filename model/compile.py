"""``--compile``: ``torch.compile`` for the fixed-shape parts of the network (docs/COMPILE.md).

Evaluation compiles the two encoders, the ASPP, the decoder and the QAM (``score``) of the
inference-optimised network, each with ``dynamic=False``: a new frame size or object count
compiles once more (and lands in the cache on disk). The memory readout, whose size grows
with the memory, stays eager. Training compiles the clip forward (:class:`LazyCompiled`
around the training wrapper); the network's modules and state-dict keys stay as they are.

Compilation is lazy: a part compiles at its first call. A part that cannot be compiled
says so in one warning line and runs eager from then on. The seconds of the calls that
compiled are counted in a :class:`CompileRecord`, so that speeds can leave them out.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn

INFERENCE_PARTS = ("rgb_encoder", "mask_rgb_encoder", "aspp", "decoder", "score")
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
# Frame sizes x object counts one process may compile each part for (dynamo's default of 8 is few for YouTube-VOS).
RECOMPILE_LIMIT = 64
BACKEND: Any = "inductor"  # torch.compile's backend
REASON_LENGTH = 160
# Logged by torch when it looks for CUDA while compiling on a machine without it: not our run's business.
QUIET_LOGGERS = ("torch.utils.cpp_extension",)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/qdmn/inductor``, else ``~/.cache/qdmn/inductor``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qdmn" / "inductor"


def prepare_compiler() -> Path:
    """Set up this process for ``--compile``; returns inductor's cache folder.

    The cache is ``$TORCHINDUCTOR_CACHE_DIR`` when the user set it, else :func:`default_cache_dir`
    (every process of a parallel run shares it, so only the first compiles from scratch).
    """
    os.environ.setdefault(CACHE_ENV, str(default_cache_dir()))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    import torch._dynamo

    for limit in ("recompile_limit", "cache_size_limit"):  # the name since PyTorch 2.6, and before
        if hasattr(torch._dynamo.config, limit):
            setattr(torch._dynamo.config, limit, max(RECOMPILE_LIMIT, getattr(torch._dynamo.config, limit)))
            break
    return Path(os.environ[CACHE_ENV])


@dataclass
class CompileRecord:
    """Inductor's cache folder, and what compiling cost so far: the seconds of the calls that compiled (their first run
    included), the graphs compiled, and the parts left eager (part -> why)."""

    cache: Path
    seconds: float = 0.0
    graphs: int = 0
    eager: dict[str, str] = field(default_factory=dict)


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def short_reason(error: BaseException) -> str:
    """``Type: first line`` of the error (of the backend's error when dynamo wrapped it), at most REASON_LENGTH characters."""
    inner = getattr(error, "inner_exception", None) or error
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = f"{type(inner).__name__}: {lines[0]}" if lines else type(inner).__name__
    return text if len(text) <= REASON_LENGTH else text[: REASON_LENGTH - 1] + "…"


def compile_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile`` of ``fn`` for fixed shapes (tests replace this function or :data:`BACKEND`)."""
    return torch.compile(fn, dynamic=False, backend=BACKEND)


class LazyCompiled:
    """``eager`` compiled at its first call; after a compilation error, ``eager`` itself (one warning line).

    The time of every call during which dynamo compiled a graph (or failed to) goes to ``record``.
    """

    def __init__(self, name: str, eager: Callable[..., Any], record: CompileRecord, compiled: Optional[Callable[..., Any]] = None):
        self.name = name
        self.eager = eager
        self.record = record
        self.compiled = compiled if compiled is not None else compile_function(eager)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is None:
            return self.eager(*args, **kwargs)
        before, start = compiled_graphs(), time.perf_counter()
        try:
            out = self.compiled(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure of the compiled part: the part runs eager
            self.record.seconds += time.perf_counter() - start
            self.give_up(e)
            return self.eager(*args, **kwargs)
        grown = compiled_graphs() - before
        if grown:
            self.record.seconds += time.perf_counter() - start
            self.record.graphs += grown
        return out

    def give_up(self, error: BaseException) -> None:
        self.compiled = None
        reason = short_reason(error)
        self.record.eager[self.name] = reason
        print(f"warning: --compile: {self.name} could not be compiled ({reason}); it runs eager", file=sys.stderr, flush=True)


def compile_parts(network: nn.Module, parts: tuple[str, ...] = INFERENCE_PARTS) -> CompileRecord:
    """Compile ``parts`` (submodules of ``network``) lazily, in place: each module's ``forward`` becomes a
    :class:`LazyCompiled` of itself, so names, weights and state-dict keys stay as they were. The record is also kept as
    ``network.compile_record``."""
    record = CompileRecord(prepare_compiler())
    for name in parts:
        module = network.get_submodule(name)
        module.forward = LazyCompiled(name, module.forward, record)  # type: ignore[method-assign]
    network.compile_record = record  # type: ignore[assignment]
    return record


def compile_record(network: nn.Module) -> Optional[CompileRecord]:
    """The record of :func:`compile_parts` (None for a network that was not compiled)."""
    record = getattr(network, "compile_record", None)
    return record if isinstance(record, CompileRecord) else None
