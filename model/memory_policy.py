"""The quality-aware dynamic memory policy (QDMN, docs/METHOD.md §2), as plain bookkeeping.

This unit decides *which* frames the memory holds; it never sees a tensor. The
propagation engine asks it what to do with each memorised frame and keeps the
keys/values of the frames it names, so eviction can never hit the wrong frame (the
official code deletes by list position from a tensor whose slot 0 is the annotated
frame, and so deletes the wrong frame).

Rules, for each frame t after the annotated frame a (all numbers are parameters):

* quality ``q_t`` = (mean of frame t's object QAM scores) / base. Two options, each
  set to its official core's behaviour at HEAD (``evaluation.official.OFFICIAL_HEAD``) by the script
  defaults (``DAVIS_MEMORY``, ``YOUTUBE_MEMORY``):

  - ``quality_mean``: ``"all"`` averages the scores of *all* objects, zeros included
    (official DAVIS core ``inference_core.py``, where the zero filter of propagated
    frames is commented out); ``"nonzero"`` averages only the non-zero ones (official
    YouTube-VOS core ``inference_core_yv.py``; also the first published version of both
    cores, docs/OFFICIAL_AGREEMENT.md);
  - ``quality_base``: ``"annotated"`` divides by the mean of the *non-zero* scores on the
    most recent annotated frame (official DAVIS core); ``"first_propagated"`` divides
    by the mean (as ``quality_mean`` says) of the first frame judged after the most
    recent annotated frame, i.e. the first propagated frame of the official pass, whose
    own quality is therefore 1 (official YouTube-VOS core, which resets it at each
    annotation frame since each starts a new pass);

* a zero base (all scores zero, where the official code divides 0 by 0) is guarded:
  warned once, then ``zero_base`` decides (nothing admitted, or admission by frequency);
* admit t if ``t - last_admitted >= mem_freq`` and ``q_t > threshold``; on admission
  the admission counter n increases; if the bank already holds more than
  ``capacity`` entries, the entry m minimising ``q_m + exp(-|n - n_m|)`` is evicted
  (ties: the oldest), then t is appended. An entry's ``q_m`` is its quality number
  (the official YouTube-VOS core stores the list of scores and then crashes);
* annotated frames are permanent and never evicted;
* a frame that is not admitted serves as temporary memory for the next frame only
  (the engine handles that; the policy reports it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional

ZERO_BASE_CHOICES = ("none", "frequency")
# How a propagated frame's object scores are averaged: all objects, or the non-zero ones.
QUALITY_MEANS = ("all", "nonzero")
# What the average is divided by: the annotated frame's non-zero mean, or the first
# propagated frame's mean (see the module docstring).
QUALITY_BASES = ("annotated", "first_propagated")
# "qdmn": the paper's policy. The others are baselines for comparison:
# "every": every mem_freq-th frame, never evicted (STCN); "fifo": every mem_freq-th
# frame, the oldest evicted at the same capacity; "first_prev": annotated + previous frame only.
POLICIES = ("qdmn", "every", "fifo", "first_prev")


@dataclass(frozen=True)
class MemoryConfig:
    mem_freq: int = 5
    threshold: float = 0.8
    capacity: int = 20
    # What to do when the annotated frame's QAM scores are all zero (a dead QAM):
    # "none" admits nothing (the official outcome, without its NaNs);
    # "frequency" admits every mem_freq-th frame with quality 1 (STCN-like, bounded).
    zero_base: str = "none"
    policy: str = "qdmn"
    quality_mean: str = "all"
    quality_base: str = "annotated"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, not {self.policy!r}")
        if self.mem_freq < 1:
            raise ValueError(f"mem_freq must be >= 1, not {self.mem_freq}")
        if self.capacity < 0:
            raise ValueError(f"capacity must be >= 0, not {self.capacity}")
        if self.zero_base not in ZERO_BASE_CHOICES:
            raise ValueError(f"zero_base must be one of {ZERO_BASE_CHOICES}, not {self.zero_base!r}")
        if self.quality_mean not in QUALITY_MEANS:
            raise ValueError(f"quality_mean must be one of {QUALITY_MEANS}, not {self.quality_mean!r}")
        if self.quality_base not in QUALITY_BASES:
            raise ValueError(f"quality_base must be one of {QUALITY_BASES}, not {self.quality_base!r}")

    @property
    def max_entries(self) -> int:
        """Most admitted entries the bank can hold: eviction starts above ``capacity``."""
        return self.capacity + 1


# The official cores at HEAD (evaluation.official.OFFICIAL_HEAD): inference_core.py (DAVIS 2016/2017)
# and inference_core_yv.py (YouTube-VOS).
DAVIS_MEMORY = MemoryConfig(threshold=0.8, capacity=20, quality_mean="all", quality_base="annotated")
YOUTUBE_MEMORY = MemoryConfig(threshold=0.75, capacity=10, quality_mean="nonzero", quality_base="first_propagated")


@dataclass(frozen=True)
class Entry:
    frame: int
    admission: int  # n: the admission counter when it was admitted
    quality: float


@dataclass(frozen=True)
class Decision:
    admitted: bool
    evicted: Optional[int] = None  # frame index of the evicted entry
    quality: float = 0.0


def mean_nonzero(scores: Iterable[float]) -> float:
    """Mean of the non-zero scores; 0 when there are none (the official code gets NaN)."""
    kept = [float(s) for s in scores if s != 0]
    return sum(kept) / len(kept) if kept else 0.0


def mean_scores(scores: Iterable[float], how: str) -> float:
    """Mean of all the scores (``"all"``) or of the non-zero ones (``"nonzero"``); 0 when empty."""
    if how == "nonzero":
        return mean_nonzero(scores)
    values = [float(s) for s in scores]
    return sum(values) / len(values) if values else 0.0


@dataclass
class QualityAwareMemory:
    config: MemoryConfig = field(default_factory=MemoryConfig)
    permanent: list[int] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    base_score: Optional[float] = None
    last_admitted: Optional[int] = None
    admissions: int = 0
    warned_zero_base: bool = False
    base_pending: bool = False  # quality_base "first_propagated": the next judged frame sets the base

    # ------------------------------------------------------------------ events
    def annotate(self, frame: int, object_scores: Sequence[float]) -> None:
        """An annotated frame enters the memory permanently and (re)sets the base score.

        With ``quality_base="annotated"`` the base is the mean non-zero QAM score of the
        objects memorised on this frame; with ``"first_propagated"`` it is set by the
        next frame judged. Admission bookkeeping (entries, counter) is kept.
        """
        if frame not in self.permanent:
            self.permanent.append(frame)
        self.last_admitted = frame
        if self.config.quality_base == "annotated":
            self._set_base(mean_nonzero(object_scores), f"the annotated frame {frame}")
        else:
            self.base_score = None
            self.base_pending = True

    def quality(self, object_scores: Sequence[float]) -> float:
        """Normalised quality of a frame from its objects' QAM scores."""
        if self.base_score is None:
            raise RuntimeError("annotate() (and, with quality_base first_propagated, consider()) must come first")
        if self.base_score == 0:
            return 1.0 if self.config.zero_base == "frequency" else 0.0
        return mean_scores(object_scores, self.config.quality_mean) / self.base_score

    def consider(self, frame: int, object_scores: Sequence[float]) -> Decision:
        """Judge a memorised (non-annotated) frame: admit it, maybe evicting another."""
        if self.last_admitted is None:
            raise RuntimeError("annotate() must be called before frames are judged")
        if self.base_pending:
            self.base_pending = False
            self._set_base(mean_scores(object_scores, self.config.quality_mean), f"the first propagated frame {frame}")
        q = self.quality(object_scores)
        if frame - self.last_admitted < self.config.mem_freq or not self._passes(q):
            return Decision(admitted=False, quality=q)
        self.admissions += 1
        evicted = None
        if len(self.entries) > self.config.capacity and self.config.policy != "every":
            victim = self._eviction_choice()
            self.entries.remove(victim)
            evicted = victim.frame
        self.entries.append(Entry(frame, self.admissions, q))
        self.last_admitted = frame
        return Decision(admitted=True, evicted=evicted, quality=q)

    # ------------------------------------------------------------------ helpers
    def _set_base(self, base: float, where: str) -> None:
        """Set the base score; an all-zero base is warned about once (ratios are undefined)."""
        self.base_score = base
        if base == 0 and not self.warned_zero_base:
            self.warned_zero_base = True
            fallback = "nothing will be admitted" if self.config.zero_base == "none" else "admitting by frequency only"
            warnings.warn(
                f"QAM scores of {where} are all zero, so quality ratios are undefined; "
                f"{fallback} (--zero_base {self.config.zero_base})",
                RuntimeWarning,
                stacklevel=3,
            )

    def _passes(self, q: float) -> bool:
        if self.config.policy != "qdmn":
            return self.config.policy != "first_prev"
        if self.base_score == 0:
            return self.config.zero_base == "frequency"
        return q > self.config.threshold

    def _eviction_choice(self) -> Entry:
        """The entry minimising quality + temporal closeness; the first one on ties."""
        if self.config.policy == "fifo":
            return self.entries[0]
        n = self.admissions
        return min(self.entries, key=lambda e: e.quality + math.exp(-abs(n - e.admission)))

    @property
    def frames(self) -> list[int]:
        """Frames whose keys the memory holds: permanent ones first, then admitted ones."""
        return self.permanent + [e.frame for e in self.entries]
