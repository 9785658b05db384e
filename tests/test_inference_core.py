"""The propagation engine with a small random network."""

import pytest
import torch

from inference_core import InferenceCore
from model.config import LITE
from model.memory_policy import MemoryConfig
from model.network import QDMN


@pytest.fixture(scope="module")
def network() -> QDMN:
    torch.manual_seed(0)
    return QDMN(LITE.with_(qam_activation="sigmoid")).eval()


def frames(n: int, h: int = 40, w: int = 56, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, h, w, generator=g) for _ in range(n)]


def first_masks(h: int = 40, w: int = 56) -> torch.Tensor:
    masks = torch.zeros(2, h, w)
    masks[0, 5:20, 5:20] = 1
    masks[1, 22:35, 30:50] = 1
    return masks


def test_annotated_frame_is_reproduced(network):
    core = InferenceCore(network, MemoryConfig())
    prob = core.step(frames(1)[0], first_masks(), [1, 2])
    assert prob.shape == (3, 40, 56)  # unpadded
    labels = prob.argmax(0)
    assert torch.equal(labels == 1, first_masks()[0].bool())
    assert torch.equal(labels == 2, first_masks()[1].bool())
    assert core.memory_frames() == [0]


def test_memory_stays_bounded_and_keeps_the_annotated_frame(network):
    config = MemoryConfig(mem_freq=1, threshold=-1.0, capacity=3)  # admit everything
    core = InferenceCore(network, config)
    video = frames(14)
    core.step(video[0], first_masks(), [1, 2])
    evictions = 0
    for image in video[1:]:
        prob = core.step(image)
        assert prob.shape == (3, 40, 56)
        assert torch.allclose(prob.sum(0), torch.ones(40, 56), atol=1e-5)
        assert core.memory_frames()[0] == 0
        assert len(core.policy.entries) <= config.max_entries
        assert set(core.store) == set(core.policy.frames)
        evictions = sum(d.evicted is not None for _, d in core.decisions)
    assert evictions >= 3
    # the last frame is never memorised
    assert core.decisions[-1][0] == 12


def test_previous_frame_is_temporary_memory(network):
    core = InferenceCore(network, MemoryConfig(mem_freq=100))  # admit nothing
    video = frames(4)
    core.step(video[0], first_masks(), [1, 2])
    core.step(video[1])
    assert core.temporary is None  # frame 0 is in memory already
    core.step(video[2])
    assert core.temporary is not None and core.memory_frames() == [0]
    with torch.inference_mode():  # as inside step()
        key, _, invalid = core._memory()
    assert key.shape[-1] == 2 * core.store[0].key.shape[-1] and invalid is None


def test_object_arriving_later_cannot_read_older_memory(network):
    core = InferenceCore(network, MemoryConfig(mem_freq=1, threshold=-1.0, capacity=5))
    video = frames(6)
    masks = first_masks()
    core.step(video[0], masks[:1], [3])
    core.step(video[1])
    core.step(video[2])
    prob = core.step(video[3], masks[1:], [7])
    assert core.object_ids == [3, 7]
    assert prob.shape == (3, 40, 56)
    assert torch.equal(prob.argmax(0) == 2, masks[1].bool())
    prob = core.step(video[4])
    with torch.inference_mode():  # as inside step()
        key, value, invalid = core._memory()
    assert invalid is not None and invalid[0].sum() == 0 and invalid[1].sum() > 0
    assert core.policy.permanent == [0, 3]


def test_video_without_objects_is_all_background(network):
    core = InferenceCore(network, MemoryConfig())
    video = frames(3)
    prob = core.step(video[0], torch.zeros(0, 40, 56), [])
    assert prob.shape == (1, 40, 56)
    assert core.step(video[1]).shape == (1, 40, 56)


def test_frame_size_change_is_refused(network):
    core = InferenceCore(network, MemoryConfig())
    core.step(frames(1)[0], first_masks(), [1, 2])
    with pytest.raises(ValueError, match="size"):
        core.step(torch.randn(3, 48, 56))


def test_youtube_base_is_the_first_frame_propagated_after_each_annotation(network):
    from model.memory_policy import YOUTUBE_MEMORY, mean_nonzero

    core = InferenceCore(network, YOUTUBE_MEMORY, record_scores=True)
    video = frames(9)
    masks = first_masks()
    core.step(video[0], masks[:1], [1])
    for t in (1, 2, 3):
        core.step(video[t])
    core.step(video[4], masks[1:], [2])  # a second annotated frame starts a new pass
    for t in (5, 6, 7, 8):
        core.step(video[t])
    scores = dict(core.score_log)
    assert sorted(scores) == [1, 2, 3, 5, 6, 7]
    decisions = dict(core.decisions)
    assert decisions[1].quality == pytest.approx(1.0) and decisions[5].quality == pytest.approx(1.0)
    assert core.policy.base_score == pytest.approx(mean_nonzero(scores[5]))
    assert decisions[6].quality == pytest.approx(mean_nonzero(scores[6]) / mean_nonzero(scores[5]))
