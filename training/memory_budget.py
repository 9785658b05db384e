"""Whether a training run fits in memory, decided before its first step (docs/OUTPUT_SAFETY.md).

``train.py --size 4096`` on 96x128 frames asked for crops of 4096x4096: the kernel killed
it for lack of memory after 86 s. Now the crop and batch are checked first against an
estimate of the peak memory of one training step:

    20 bytes per parameter (weights, gradients, Adam's two moments, and a copy) + the runtime
    + batch x (activations per crop pixel x crop pixels + the memory readout's affinities)

The bytes per parameter, the runtime and the activations per crop pixel were fit to measurements (float32, a 3-frame clip, two objects, one
thread; ``python -m scripts.benchmark_train --batch B --size S --precisions float32``,
the difference between batch 1 and 2): about 6 KiB for the lite (ResNet-18) network and
22 KiB for the official (ResNet-50) one. The affinity of each propagated frame against
up to two memory frames is (2P x P) float32 values, P = crop pixels / 256, held about
four times (the matrix, its softmax, and both again for the backward pass); it is
negligible at 384 px and dominates far above. ``--amp`` needs less; the float32 figure
is used as an upper estimate. A run whose estimate exceeds the memory available (the
CPU: ``MemAvailable`` of /proc/meminfo; CUDA: the device's free memory) is refused in one
line naming the crop, the frames' size and the largest ``--size`` that fits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import ConcatDataset, Dataset

from model.config import ModelConfig
from model.network import QDMN
from util.errors import UserError

GIB = 2**30
RUNTIME_BYTES = 800 * 2**20  # Python, PyTorch and the data pipeline, measured with the smallest runs
BYTES_PER_PARAMETER = 20  # float32 weight, gradient, Adam's two moments, and a copy (fit to the measurements)
ACTIVATION_BYTES_PER_PIXEL = {"resnet18": 6 * 1024, "resnet50": 22 * 1024}
AFFINITY_COPIES = 4
PROPAGATED_FRAMES = 2  # frames 2 and 3 of a clip read the memory
MEMORY_FRAMES = 2


@functools.lru_cache(maxsize=8)
def parameter_count(config: ModelConfig) -> int:
    return sum(p.numel() for p in QDMN(config, top_k=None).parameters())


def step_bytes(config: ModelConfig, batch: int, height: int, width: int) -> int:
    """Estimated peak memory of one training step (float32) with ``batch`` crops of ``height`` x ``width``."""
    parameters = parameter_count(config)
    pixels = height * width
    positions = pixels // 256
    affinity = PROPAGATED_FRAMES * MEMORY_FRAMES * positions * positions * 4 * AFFINITY_COPIES
    per_crop = ACTIVATION_BYTES_PER_PIXEL.get(config.backbone, max(ACTIVATION_BYTES_PER_PIXEL.values())) * pixels + affinity
    return RUNTIME_BYTES + BYTES_PER_PARAMETER * parameters + batch * per_crop


def available_bytes(device: torch.device) -> Optional[int]:
    """Memory a run may use: the CUDA device's free memory, else the machine's ``MemAvailable``; None when unknown."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


def sample_frame(dataset: Dataset) -> Optional[Path]:
    """One training image of ``dataset`` (a video's first frame or a static image), to report the frames' size."""
    for part in _parts(dataset):
        images = getattr(part, "images", None)
        if images:
            return Path(images[0])
        videos, frames, root = getattr(part, "videos", None), getattr(part, "frames", None), getattr(part, "im_root", None)
        if videos and frames and root is not None:
            return Path(root) / videos[0] / frames[videos[0]][0]
    return None


def _parts(dataset: Any) -> Iterator[Any]:
    if isinstance(dataset, ConcatDataset):
        for part in dataset.datasets:
            yield from _parts(part)
    else:
        yield dataset


def frame_size(path: Optional[Path]) -> Optional[tuple[int, int]]:
    """(height, width) from the image's header, nothing decoded; None when unreadable."""
    if path is None:
        return None
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.height, image.width
    except Exception:  # noqa: BLE001 - the frames' size only adds to the message
        return None


def largest_fitting_size(config: ModelConfig, batch: int, aspect: float, budget: int) -> int:
    """The largest multiple of 16 for ``--size`` (crops ``size`` x ``aspect * size``) whose estimate fits ``budget``."""
    size = 0
    while step_bytes(config, batch, size + 16, round(aspect * (size + 16))) <= budget and size < 8192:
        size += 16
    return size


def check_training_fits(config: ModelConfig, batch: int, size: int, width: Optional[int], device: torch.device,
                        dataset: Dataset, processes: int = 1) -> None:
    """Before the first step (and before the save folder): a UserError when the crops cannot fit in memory.

    ``processes``: training processes sharing this machine's memory (ranks on a CPU node).
    """
    width = width or size
    budget = available_bytes(device)
    if budget is None:
        return
    budget //= max(1, processes) if device.type != "cuda" else 1
    need = step_bytes(config, batch, size, width)
    if need <= budget:
        return
    frames = frame_size(sample_frame(dataset))
    seen = ""
    if frames is not None:
        scale = size / min(frames)
        seen = f" of {frames[1]}x{frames[0]} frames" + (f" ({scale:.0f}x upscaled)" if scale >= 2 else "")
    fits = largest_fitting_size(config, batch, width / size, budget)
    advice = f"use --size {fits} or less" if fits >= 32 else "use a smaller model (--model_config lite)"
    where = "free on the GPU" if device.type == "cuda" else "available on this machine"
    raise UserError(
        f"--size {size}: batches of {batch} crops of {width}x{size}{seen} need about {need / GIB:.0f} GiB for the "
        f"{config.backbone} network, {budget / GIB:.1f} GiB is {where}; {advice}, or a smaller --batch_size"
    )
