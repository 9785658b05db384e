"""The quality-aware memory policy, on its own (no network)."""

import math
import random

import pytest

from model.memory_policy import DAVIS_MEMORY, YOUTUBE_MEMORY, MemoryConfig, QualityAwareMemory, mean_nonzero


def started(config: MemoryConfig, base=(0.8, 0.8)) -> QualityAwareMemory:
    memory = QualityAwareMemory(config)
    memory.annotate(0, list(base))
    return memory


def test_quality_is_normalised_by_the_base_score():
    memory = started(MemoryConfig(), base=(0.5, 0.0, 0.7))  # zero scores of the base are ignored
    assert memory.base_score == pytest.approx(0.6)
    assert memory.quality([0.3, 0.3]) == pytest.approx(0.5)
    assert memory.quality([0.0, 0.6]) == pytest.approx(0.5)  # default: all objects count
    assert memory.quality([0.0, 0.0]) == 0.0
    assert mean_nonzero([]) == 0.0


def test_script_defaults_are_the_official_cores_at_head():
    assert (DAVIS_MEMORY.quality_mean, DAVIS_MEMORY.quality_base, DAVIS_MEMORY.threshold) == ("all", "annotated", 0.8)
    assert (YOUTUBE_MEMORY.quality_mean, YOUTUBE_MEMORY.quality_base, YOUTUBE_MEMORY.threshold) == (
        "nonzero",
        "first_propagated",
        0.75,
    )


def test_davis_head_rule_keeps_out_a_frame_with_a_lost_object():
    # Base [0.9, 0.9], frame [0.9, 0.0]: HEAD DAVIS quality 0.5 (refused); the non-zero rule gives 1.0.
    head = started(DAVIS_MEMORY, base=(0.9, 0.9))
    decision = head.consider(5, [0.9, 0.0])
    assert decision.quality == pytest.approx(0.5) and not decision.admitted
    previous = started(MemoryConfig(quality_mean="nonzero"), base=(0.9, 0.9))
    decision = previous.consider(5, [0.9, 0.0])
    assert decision.quality == pytest.approx(1.0) and decision.admitted


def test_youtube_head_rule_divides_by_the_first_propagated_frame():
    memory = QualityAwareMemory(MemoryConfig(mem_freq=5, threshold=0.75, quality_mean="nonzero", quality_base="first_propagated"))
    memory.annotate(0, [0.9, 0.9])  # the annotated frame's scores are not the base
    assert memory.base_score is None
    first = memory.consider(1, [0.4, 0.0])  # sets the base: non-zero mean 0.4
    assert memory.base_score == pytest.approx(0.4) and first.quality == pytest.approx(1.0) and not first.admitted
    decision = memory.consider(5, [0.32, 0.0])
    assert decision.quality == pytest.approx(0.8) and decision.admitted  # 0.8 > 0.75 and 5 - 0 >= 5
    assert not memory.consider(10, [0.29, 0.0]).admitted  # 0.725 <= 0.75
    # A new annotation starts a new pass: the next judged frame sets a new base.
    memory.annotate(12, [0.1])
    assert memory.consider(13, [0.2, 0.2]).quality == pytest.approx(1.0) and memory.base_score == pytest.approx(0.2)
    assert memory.consider(17, [0.16, 0.0]).quality == pytest.approx(0.8)


def test_first_propagated_zero_base_is_guarded():
    memory = QualityAwareMemory(MemoryConfig(mem_freq=1, quality_mean="nonzero", quality_base="first_propagated"))
    memory.annotate(0, [0.9])
    with pytest.warns(RuntimeWarning, match="first propagated frame 1 are all zero"):
        decision = memory.consider(1, [0.0, 0.0])
    assert decision.quality == 0.0 and not any(memory.consider(f, [0.9, 0.9]).admitted for f in range(2, 20))


def test_admission_needs_both_frequency_and_quality():
    memory = started(MemoryConfig(mem_freq=5, threshold=0.8, capacity=20))
    assert not memory.consider(4, [0.8, 0.8]).admitted  # too close to the annotated frame
    assert not memory.consider(5, [0.6, 0.6]).admitted  # quality 0.75 <= 0.8
    assert memory.consider(6, [0.8, 0.8]).admitted
    assert not memory.consider(10, [0.8, 0.8]).admitted  # 10 - 6 < 5
    assert memory.consider(11, [0.8, 0.8]).admitted
    assert memory.frames == [0, 6, 11]
    assert [e.admission for e in memory.entries] == [1, 2]


def test_threshold_is_strict():
    memory = started(MemoryConfig(mem_freq=1, threshold=1.0))
    assert not memory.consider(1, [0.8, 0.8]).admitted  # q == 1.0 is not > 1.0
    assert memory.consider(2, [0.9, 0.9]).admitted


def test_eviction_starts_above_capacity_and_picks_lowest_score():
    memory = started(MemoryConfig(mem_freq=1, threshold=0.0, capacity=3))
    qualities = [0.9, 0.5, 1.2, 1.1]  # frame 2 has the lowest quality
    for i, q in enumerate(qualities, start=1):
        assert memory.consider(i, [q * 0.8]).evicted is None
    assert len(memory.entries) == 4  # capacity + 1
    decision = memory.consider(5, [0.8])
    # n = 5: scores q + exp(-|5 - n_m|) = 0.9+e^-4, 0.5+e^-3, 1.2+e^-2, 1.1+e^-1
    assert decision.admitted and decision.evicted == 2
    assert memory.frames == [0, 1, 3, 4, 5]


def test_annotated_frame_survives_when_the_oldest_entry_is_worst():
    # The official code deletes by list position from a tensor whose slot 0 is the
    # annotated frame; here the oldest entry is the worst and must be the one removed.
    memory = started(MemoryConfig(mem_freq=1, threshold=0.0, capacity=2))
    for frame, q in [(1, 0.1), (2, 1.0), (3, 1.0)]:
        memory.consider(frame, [q * 0.8])
    decision = memory.consider(4, [0.8])
    assert decision.evicted == 1
    assert memory.frames == [0, 2, 3, 4]
    assert memory.permanent == [0]


def test_ties_evict_the_oldest():
    memory = started(MemoryConfig(mem_freq=1, threshold=0.0, capacity=1))
    memory.consider(1, [0.8])
    memory.consider(2, [0.8])
    # n=3: 1 + e^-2 vs 1 + e^-1: the older (frame 1) is further in time, so lower
    assert memory.consider(3, [0.8]).evicted == 1


def test_zero_base_score_is_guarded():
    memory = QualityAwareMemory(MemoryConfig(mem_freq=1, threshold=0.5))
    with pytest.warns(RuntimeWarning, match="all zero"):
        memory.annotate(0, [0.0, 0.0])
    q = memory.quality([0.4])
    assert q == 0.0 and not math.isnan(q)
    assert not any(memory.consider(f, [0.9]).admitted for f in range(1, 20))


def test_zero_base_frequency_fallback_admits_by_frequency_and_stays_bounded():
    memory = QualityAwareMemory(MemoryConfig(mem_freq=3, threshold=0.5, capacity=4, zero_base="frequency"))
    with pytest.warns(RuntimeWarning):
        memory.annotate(0, [0.0])
    admitted = [f for f in range(1, 40) if memory.consider(f, [0.0]).admitted]
    assert admitted == list(range(3, 40, 3))
    assert len(memory.entries) == 5
    assert memory.frames[0] == 0


def test_warns_only_once():
    memory = QualityAwareMemory(MemoryConfig())
    with pytest.warns(RuntimeWarning):
        memory.annotate(0, [0.0])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory.annotate(10, [0.0])


def test_size_bounded_over_ten_thousand_frames():
    rng = random.Random(0)
    config = MemoryConfig(mem_freq=5, threshold=0.8, capacity=20)
    memory = started(config)
    peak = 0
    evictions = 0
    for frame in range(1, 10_001):
        decision = memory.consider(frame, [rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0)])
        evictions += decision.evicted is not None
        assert decision.evicted != 0
        peak = max(peak, len(memory.entries))
        assert memory.frames[0] == 0
    assert peak == config.max_entries
    assert evictions > 100
    frames = [e.frame for e in memory.entries]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)


def test_later_annotation_is_permanent_and_keeps_bookkeeping():
    memory = started(MemoryConfig(mem_freq=1, threshold=0.0, capacity=1))
    memory.consider(1, [0.8])
    memory.annotate(2, [0.4])
    assert memory.permanent == [0, 2] and memory.base_score == pytest.approx(0.4)
    assert memory.admissions == 1 and [e.frame for e in memory.entries] == [1]
    assert not memory.consider(2, [0.4]).admitted  # same frame: gap 0
    for f in range(3, 30):
        memory.consider(f, [0.4])
    assert memory.permanent == [0, 2] and len(memory.entries) <= 2


@pytest.mark.parametrize(
    "bad", [dict(mem_freq=0), dict(capacity=-1), dict(zero_base="x"), dict(quality_mean="max"), dict(quality_base="last")]
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        MemoryConfig(**bad)


def test_baseline_every_keeps_every_kth_frame_without_bound():
    memory = started(MemoryConfig(mem_freq=5, capacity=2, policy="every"))
    for frame in range(1, 60):
        memory.consider(frame, [0.01])  # quality is ignored
    assert memory.frames == [0, *range(5, 60, 5)]


def test_baseline_fifo_evicts_the_oldest():
    memory = started(MemoryConfig(mem_freq=5, capacity=2, policy="fifo"))
    evicted = [memory.consider(frame, [2.0 if frame == 5 else 0.01]).evicted for frame in range(1, 31)]
    assert [e for e in evicted if e is not None] == [5, 10, 15]
    assert memory.frames == [0, 20, 25, 30]


def test_baseline_first_prev_admits_nothing():
    memory = started(MemoryConfig(mem_freq=1, policy="first_prev"))
    assert not any(memory.consider(frame, [0.8]).admitted for frame in range(1, 50))
    assert memory.frames == [0]


@pytest.mark.parametrize(
    "script, expected",
    [
        ("eval_davis", ("all", "annotated", 0.8, 20)),
        ("eval_davis_2016", ("all", "annotated", 0.8, 20)),
        ("eval_youtube", ("nonzero", "first_propagated", 0.75, 10)),
        ("eval_generic", ("all", "annotated", 0.8, 20)),
    ],
)
def test_each_script_defaults_to_its_official_core_and_flags_override(script, expected):
    import importlib

    from evaluation.arguments import eval_config
    from evaluation.config import memory_config

    module = importlib.import_module(script)
    extra = ["--video", "v", "--masks", "m"] if script == "eval_generic" else []
    config = memory_config(eval_config(module.parse_args(["--output", "o", *extra])))
    assert (config.quality_mean, config.quality_base, config.threshold, config.capacity) == expected
    flags = ["--quality_mean", "nonzero", "--quality_base", "annotated"]
    config = memory_config(eval_config(module.parse_args(["--output", "o", *extra, *flags])))
    assert (config.quality_mean, config.quality_base) == ("nonzero", "annotated")
