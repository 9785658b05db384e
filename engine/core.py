"""The propagation engine: one video, several objects, frame by frame.

Used by DAVIS 2016/2017, YouTube-VOS and generic evaluation alike. It is streamed:
the caller hands in one frame at a time (plus annotation masks on the frames that
have them) and gets that frame's probabilities back; the engine keeps only the
previous frame and the memory, whose size the quality-aware policy bounds.

Memorisation of frame t is deferred to the call for frame t+1, so the last frame of a
video is never memorised (as in the official code) without the caller having to say
which frame is the last.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch

from model.aggregate import aggregate_wbg
from model.memory_policy import Decision, MemoryConfig, QualityAwareMemory
from model.network import QDMN
from util.hardware import amp_dtype
from util.tensor_util import Pad, pad_divide_by, unpad


@dataclass
class MemoryFrame:
    """Keys/values of one memorised frame for the objects known at that time."""

    key: torch.Tensor  # (K_e, CK, hw)
    value: torch.Tensor  # (K_e, CV, hw)

    @property
    def num_objects(self) -> int:
        return self.key.shape[0]


@dataclass
class _Previous:
    frame: int
    image: torch.Tensor  # padded (1, 3, H, W)
    prob: torch.Tensor  # padded (K+1, 1, H, W), background first
    memorised: bool


class InferenceCore:
    """Propagates annotated masks through a video with the quality-aware memory."""

    def __init__(
        self,
        network: QDMN,
        memory: MemoryConfig = MemoryConfig(),
        device: Optional[torch.device] = None,
        amp: bool = False,
        record_scores: bool = False,
    ):
        self.network = network
        self.device = device if device is not None else next(network.parameters()).device
        # Mixed precision: float16 on CUDA, bfloat16 on CPU; probabilities stay float32.
        self.amp_dtype = amp_dtype(self.device) if amp else None
        self.policy = QualityAwareMemory(memory)
        self.object_ids: list[int] = []  # the label of each object channel, in order
        self.store: dict[int, MemoryFrame] = {}  # frame index -> memorised frame
        self.temporary: Optional[MemoryFrame] = None  # previous frame when not admitted
        self.decisions: list[tuple[int, Decision]] = []
        # (frame, per-object QAM scores) of every memorised frame, for analysis only
        self.score_log: Optional[list[tuple[int, list[float]]]] = [] if record_scores else None
        self.pad: Optional[Pad] = None
        self.frame_size: Optional[tuple[int, int]] = None
        self._prev: Optional[_Previous] = None
        self._cache: Optional[tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]] = None
        self._cache_spare = 0  # cells at the end of the cached buffers kept for the temporary frame
        self._next_frame = 0

    @property
    def num_objects(self) -> int:
        return len(self.object_ids)

    # ------------------------------------------------------------------ public API
    @torch.inference_mode()
    def step(
        self,
        image: torch.Tensor,
        masks: Optional[torch.Tensor] = None,
        object_ids: Optional[Sequence[int]] = None,
        frame: Optional[int] = None,
    ) -> torch.Tensor:
        """Process the next frame; returns its probabilities (K+1, H, W), background first.

        ``image`` is an ImageNet-normalised (3, H, W) tensor. On annotated frames,
        ``masks`` (n, H, W) holds one binary mask per object of ``object_ids``: new ids
        become new objects (memory frames from before stay unreadable for them), known
        ids are overwritten. ``frame`` is the frame's index in the video (default: one
        more than the last); indices must increase.
        """
        frame = self._next_frame if frame is None else int(frame)
        if frame < self._next_frame:
            raise ValueError(f"frame {frame} comes after frame {self._next_frame - 1}; frames must be given in order")
        self._next_frame = frame + 1
        with self._autocast():
            self._memorise_previous()
        size = (int(image.shape[-2]), int(image.shape[-1]))
        if self.frame_size is not None and size != self.frame_size:
            raise ValueError(f"frame {frame} has size {size}, unlike the earlier frames of this video {self.frame_size}")
        self.frame_size = size
        img, pad = pad_divide_by(image.to(self.device, non_blocking=True).unsqueeze(0), 16)
        self.pad = pad
        with self._autocast():
            prob = self._segment(img) if self.num_objects else self._background(img)
            if masks is not None:
                if object_ids is None or len(object_ids) != masks.shape[0]:
                    raise ValueError("object_ids must name each mask")
                prob = self._annotate(frame, img, prob, masks, object_ids)
        self._prev = _Previous(frame, img, prob, memorised=masks is not None)
        return unpad(prob[:, 0], pad)

    def memory_frames(self) -> list[int]:
        """Frames held in memory now (the temporary previous frame excluded)."""
        return list(self.store)

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _background(self, img: torch.Tensor) -> torch.Tensor:
        return torch.ones((1, 1, *img.shape[-2:]), device=self.device)

    def _segment(self, img: torch.Tensor) -> torch.Tensor:
        assert self._prev is not None
        prior = self._prev.prob[1:].max(dim=0)[0].unsqueeze(0)  # (1, 1, H, W)
        query = self.network.query(img, prior)
        key, value, invalid = self._memory()
        logits = self.network.segment(key, value, query, invalid)
        return aggregate_wbg(torch.sigmoid(logits.float()), keep_bg=True)

    def _annotate(self, frame: int, img: torch.Tensor, prob: torch.Tensor, masks: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
        """Insert annotated masks into the probabilities, memorise the frame permanently."""
        masks = pad_divide_by(masks.to(self.device, torch.float32), 16)[0].unsqueeze(1)  # (n, 1, H, W)
        objects = prob[1:]
        region = masks.sum(0, keepdim=True) > 0.5
        objects = objects.masked_fill(region, 0)  # annotated pixels belong to the annotation
        for mask, obj_id in zip(masks, ids):
            if obj_id in self.object_ids:
                objects[self.object_ids.index(obj_id)] = mask
            else:
                self.object_ids.append(int(obj_id))
                objects = torch.cat([objects, mask.unsqueeze(0)], 0)
        prob = aggregate_wbg(objects, keep_bg=True)
        if self.num_objects:
            key, value, scores = self.network.memorize(img, prob[1:])
            self.store[frame] = MemoryFrame(key.flatten(2), value.flatten(2))
            self.temporary = None
            self._cache = None
            self.policy.annotate(frame, scores.float().tolist())
        return prob

    def _memorise_previous(self) -> None:
        prev = self._prev
        if prev is None or prev.memorised or not self.num_objects:
            return
        key, value, scores = self.network.memorize(prev.image, prev.prob[1:])
        entry = MemoryFrame(key.flatten(2), value.flatten(2))
        object_scores = scores.float().tolist()
        if self.score_log is not None:
            self.score_log.append((prev.frame, object_scores))
        decision = self.policy.consider(prev.frame, object_scores)
        self.decisions.append((prev.frame, decision))
        if decision.admitted:
            if decision.evicted is not None:
                del self.store[decision.evicted]
            self.store[prev.frame] = entry
            self.temporary = None
            self._cache = None
        else:
            self.temporary = entry
        prev.memorised = True

    # ------------------------------------------------------------------ memory
    def _memory(self) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Keys (K, CK, N), values (K, CV, N) and the unreadable cells (K, N) of the memory.

        The admitted frames are joined once per change of the bank, into buffers with one
        spare frame at the end; the temporary previous frame is copied into that spare
        slot, so a frame that is not admitted costs one frame's copy, not the whole bank's.
        """
        if self._cache is None:
            parts = [self._padded(self.store[f]) for f in self.policy.frames]
            self._cache_spare = parts[0][0].shape[2]
            self._cache = self._join(parts, spare=self._cache_spare)
        key, value, invalid = self._cache
        stored = key.shape[2] - self._cache_spare
        banked = key[..., :stored], value[..., :stored], None if invalid is None else invalid[:, :stored]
        if self.temporary is None:
            return banked
        temp = self._padded(self.temporary)
        if temp[2] is not None or temp[0].shape[2] != self._cache_spare:
            return self._join([banked, temp])
        key[..., stored:].copy_(temp[0])
        value[..., stored:].copy_(temp[1])
        return key, value, invalid

    def _padded(self, entry: MemoryFrame) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        k, missing = self.num_objects, self.num_objects - entry.num_objects
        if missing == 0:
            return entry.key, entry.value, None
        key = torch.cat([entry.key, entry.key.new_zeros(missing, *entry.key.shape[1:])], 0)
        value = torch.cat([entry.value, entry.value.new_zeros(missing, *entry.value.shape[1:])], 0)
        invalid = torch.zeros((k, entry.key.shape[-1]), dtype=torch.bool, device=self.device)
        invalid[entry.num_objects :] = True
        return key, value, invalid

    @staticmethod
    def _join(parts: list[tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]], spare: int = 0):
        """Concatenate memory parts along the cell axis, leaving ``spare`` uninitialised cells at the end."""
        cells = sum(p[0].shape[2] for p in parts)
        first_key, first_value = parts[0][0], parts[0][1]
        key = first_key.new_empty((first_key.shape[0], first_key.shape[1], cells + spare))
        value = first_value.new_empty((first_value.shape[0], first_value.shape[1], cells + spare))
        has_invalid = any(p[2] is not None for p in parts)
        invalid = key.new_zeros((key.shape[0], cells + spare), dtype=torch.bool) if has_invalid else None
        start = 0
        for part_key, part_value, part_invalid in parts:
            end = start + part_key.shape[2]
            key[..., start:end] = part_key
            value[..., start:end] = part_value
            if invalid is not None and part_invalid is not None:
                invalid[:, start:end] = part_invalid
            start = end
        return key, value, invalid
