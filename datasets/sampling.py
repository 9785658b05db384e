"""Data order and per-sample randomness that survive an interruption exactly.

:class:`ResumableSampler` is a :class:`~torch.utils.data.DistributedSampler` (same
shuffling, same split between ranks, ``set_epoch`` as usual) that can start an epoch
part-way (``set_start``) and yields ``(index, seed)`` pairs. The seed is a function of
the run's seed, the epoch and the sample's *global* position in the epoch, so:

* a sample's augmentation does not depend on the data-loader workers, their number, or
  what was loaded before it: resuming from a checkpoint reproduces the stream exactly;
* the global stream of a run does not depend on how it is split between GPUs.

:class:`SeededDataset` turns ``(index, seed)`` back into ``dataset[index]`` drawn with
torch's generator seeded by ``seed`` (the caller's generator state is restored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 31-bit seed for the sample at ``position`` of ``epoch``."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0] >> 1)


class ResumableSampler(DistributedSampler):
    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank in the current epoch (once)."""
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            yield indices[position], sample_seed(self.seed, self.epoch, position * self.num_replicas + self.rank)

    def __len__(self) -> int:
        return self.num_samples - self.start


class SeededDataset(Dataset):
    """``dataset[(index, seed)]`` = ``dataset[index]`` drawn with torch's generator seeded by ``seed``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]
