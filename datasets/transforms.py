"""Training augmentations (docs/METHOD.md §3), with torchvision's v2 transforms.

Every geometric transform is called with the image (a PIL image, so that bicubic
interpolation is available) and its mask (an :class:`AlignedMask`, always resampled with
nearest neighbour) in the same call, so both move together. Colour transforms leave
masks alone. Resizing resamples masks with the pixel-centre nearest neighbour that PIL
uses (torchvision's ``NEAREST_EXACT``), as the official PIL pipeline does; torch's
plain ``nearest`` (floor of ``dst * scale``) shifts masks by up to a pixel against the
bicubic image (measured in ``tests/test_datasets.py``).

Each clip gets one *sequence* transform, identical for its three frames, and one *pair*
transform per frame. The sequence transform is made identical by drawing its random
parameters from a generator reseeded with the same seed for every frame
(:func:`apply_shared`), which is what the official code does with ``reseed``; the global
torch generator is restored afterwards, so the rest of the sample is unaffected. All
randomness comes from torch's global generator, so a sample is a function of the seed
it is drawn with (see :mod:`datasets.sampling`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from util.image_io import normalize_image

IM_MEAN = (124, 116, 104)  # ImageNet mean in 0..255, the padding colour of the official code
DEFAULT_SIZE = 384
BICUBIC = v2.InterpolationMode.BICUBIC
NEAREST = v2.InterpolationMode.NEAREST


class AlignedMask(tv_tensors.Mask):
    """A mask resized with PIL-equivalent nearest neighbour (``NEAREST_EXACT``), not torch's floor-nearest."""


def _resize_exact(mask: torch.Tensor, size: list[int], max_size: Optional[int] = None) -> torch.Tensor:
    plain = mask.as_subclass(torch.Tensor)
    flat = plain.unsqueeze(0) if plain.ndim < 3 else plain
    out = TF.resize_image(flat, size=size, interpolation=v2.InterpolationMode.NEAREST_EXACT, max_size=max_size, antialias=False)
    return out.squeeze(0) if plain.ndim < 3 else out


@TF.register_kernel(TF.resize, AlignedMask)
def _resize_aligned(inpt: AlignedMask, size: list[int], interpolation: Any = None, max_size: Optional[int] = None, **_: Any) -> AlignedMask:
    return tv_tensors.wrap(_resize_exact(inpt, size, max_size), like=inpt)


@TF.register_kernel(TF.resized_crop, AlignedMask)
def _resized_crop_aligned(inpt: AlignedMask, top: int, left: int, height: int, width: int, size: list[int], **_: Any) -> AlignedMask:
    cropped = TF.crop_mask(inpt.as_subclass(torch.Tensor), top, left, height, width)
    return tv_tensors.wrap(_resize_exact(cropped, size), like=inpt)


FILL = {Image.Image: IM_MEAN, tv_tensors.Mask: 0, AlignedMask: 0}


def static_sequence_transform() -> v2.Compose:
    """Shared by the 3 frames made from one static image.

    The official code leaves this affine at PIL's default (nearest) interpolation.
    """
    return v2.Compose(
        [
            v2.RandomAffine(degrees=0, scale=(0.8, 1.5), interpolation=NEAREST, fill=FILL),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(0.1, 0.05, 0.05, 0.05),
            v2.RandomGrayscale(0.05),
        ]
    )


def static_pair_transform(size: int = DEFAULT_SIZE) -> v2.Compose:
    """Per frame: small affine, shorter side to ``size``, random ``size``² crop, mild jitter."""
    return v2.Compose(
        [
            v2.RandomAffine(degrees=20, scale=(0.9, 1.1), shear=10, interpolation=BICUBIC, fill=FILL),
            v2.Resize(size, interpolation=BICUBIC, antialias=True),
            v2.RandomCrop((size, size), pad_if_needed=True, fill=FILL),
            v2.ColorJitter(0.1, 0.05, 0.05, 0),
        ]
    )


def video_sequence_transform(size: int = DEFAULT_SIZE, blender: bool = False, width: Optional[int] = None) -> v2.Compose:
    """Shared by the 3 frames of a clip; BL30K crops more aggressively (its frames are larger).

    The crop is ``size``² as officially, or ``size`` × ``width``; a wide crop draws its
    source region around the same aspect ratio, so the content is not stretched.
    """
    scale = (0.25, 1.0) if blender else (0.36, 1.0)
    width = width or size
    aspect = width / size
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomResizedCrop(
                (size, width), scale=scale, ratio=(aspect * 3 / 4, aspect * 4 / 3), interpolation=BICUBIC, antialias=True
            ),
            v2.ColorJitter(0.1, 0.03, 0.03, 0),
            v2.RandomGrayscale(0.05),
        ]
    )


def video_pair_transform() -> v2.Compose:
    return v2.Compose(
        [
            v2.RandomAffine(degrees=15, shear=10, interpolation=BICUBIC, fill=FILL),
            v2.ColorJitter(0.01, 0.01, 0.01, 0),
        ]
    )


def random_seed() -> int:
    """A seed drawn from torch's global generator."""
    return int(torch.randint(0, 2**31 - 1, (1,)).item())


def apply_shared(transform: Callable[..., Any], seed: int, image: Image.Image, mask: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """Apply ``transform`` with its randomness drawn from ``seed``; the global generator is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return apply(transform, image, mask)


def apply(transform: Callable[..., Any], image: Image.Image, mask: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """Apply a v2 transform to an image and its (H, W) uint8 mask together."""
    out_image, out_mask = transform(image, AlignedMask(torch.from_numpy(np.ascontiguousarray(mask))))
    return out_image, out_mask.numpy()


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> (3, H, W) float32, ImageNet-normalised."""
    return normalize_image(np.array(image.convert("RGB")))
