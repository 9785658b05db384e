"""ResNet with a bias on every convolution, cut after ``layer3`` (stride 16).

This is the backbone variant of the official QDMN/STCN code (``mod_resnet.py``): the
convolutions carry biases (zero-initialised, then learnt), which is why the released
checkpoint has ``conv*.bias`` tensors that torchvision's ResNet has not. ``layer4`` is
never built. ImageNet weights are copied from a torchvision state dict found locally;
nothing is ever downloaded here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


ARCHITECTURES = {
    "resnet50": (Bottleneck, (3, 4, 6)),
    "resnet18": (BasicBlock, (2, 2, 2)),
}

# File names torchvision gives its ImageNet weights (any of them will do).
TORCHVISION_WEIGHT_FILES = {
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50-19c8e357.pth"),
    "resnet18": ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
}


class ResNetTrunk(nn.Module):
    """conv1, bn1, relu, maxpool, layer1..layer3 of a biased-convolution ResNet."""

    def __init__(self, arch: str = "resnet50", in_channels: int = 3):
        super().__init__()
        block, layers = ARCHITECTURES[arch]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self._init_weights()

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def find_imagenet_weights(arch: str, explicit: Optional[str | Path] = None) -> Path:
    """Locate torchvision ImageNet weights on disk; never downloads.

    Raises FileNotFoundError with the places searched and the fix.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ImageNet weights not found; pass an existing file to --imagenet_weights")
        return path
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    for name in TORCHVISION_WEIGHT_FILES[arch]:
        if (cache / name).is_file():
            return cache / name
    raise FileNotFoundError(
        f"no torchvision {arch} ImageNet weights in {cache}; download "
        f"{TORCHVISION_WEIGHT_FILES[arch][0]} there or pass --imagenet_weights PATH"
    )


def load_imagenet_weights(trunk: ResNetTrunk, source: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy matching ImageNet tensors into ``trunk``; returns the names that were copied.

    Biases (absent from torchvision's ResNet) stay zero. Extra input channels of
    ``conv1`` (the masks) are initialised orthogonally, as in the official code.
    """
    target = trunk.state_dict()
    copied = []
    with torch.no_grad():
        for name, value in target.items():
            if name not in source or "num_batches_tracked" in name:
                continue
            src = source[name].to(value.dtype)
            if src.shape != value.shape:
                if name != "conv1.weight" or src.shape[1] > value.shape[1]:
                    raise ValueError(f"ImageNet tensor {name} has shape {tuple(src.shape)}, expected {tuple(value.shape)}")
                extra = torch.empty(value.shape[0], value.shape[1] - src.shape[1], *value.shape[2:])
                nn.init.orthogonal_(extra)
                src = torch.cat([src, extra], 1)
            value.copy_(src)
            copied.append(name)
    return copied
