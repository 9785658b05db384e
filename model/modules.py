"""Building blocks of QDMN; attribute names follow the official state dict."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from model.resnet import ResNetTrunk

QAM_INPUT_SIZE = 24  # the mask-encoder feature is resized to 24x24 before the QAM


class ResBlock(nn.Module):
    """``downsample(x) + conv2(relu(conv1(relu(x))))``; 3x3 downsample only when in != out."""

    def __init__(self, indim: int, outdim: Optional[int] = None):
        super().__init__()
        outdim = indim if outdim is None else outdim
        self.downsample = None if indim == outdim else nn.Conv2d(indim, outdim, 3, padding=1)
        self.conv1 = nn.Conv2d(indim, outdim, 3, padding=1)
        self.conv2 = nn.Conv2d(outdim, outdim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        if self.downsample is not None:
            x = self.downsample(x)
        return x + r


class UpsampleBlock(nn.Module):
    def __init__(self, skip_c: int, up_c: int, out_c: int, scale_factor: int = 2):
        super().__init__()
        self.skip_conv1 = nn.Conv2d(skip_c, up_c, 3, padding=1)
        self.skip_conv2 = ResBlock(up_c, up_c)
        self.out_conv = ResBlock(up_c, out_c)
        self.scale_factor = scale_factor

    def forward(self, skip_f: torch.Tensor, up_f: torch.Tensor) -> torch.Tensor:
        x = self.skip_conv2(self.skip_conv1(skip_f))
        x = x + F.interpolate(up_f, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        return self.out_conv(x)


class KeyValue(nn.Module):
    def __init__(self, indim: int, keydim: int, valdim: int):
        super().__init__()
        self.key_proj = nn.Conv2d(indim, keydim, 3, padding=1)
        self.val_proj = nn.Conv2d(indim, valdim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.key_proj(x), self.val_proj(x)


class MaskRGBEncoder(nn.Module):
    """Memory encoder: image ‖ object mask [‖ other objects' mask] -> f16."""

    def __init__(self, arch: str, extra_chan: int):
        super().__init__()
        trunk = ResNetTrunk(arch, in_channels=3 + extra_chan)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3 = trunk.layer1, trunk.layer2, trunk.layer3

    def forward(self, image: torch.Tensor, *masks: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, *masks], 1)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


class RGBEncoder(nn.Module):
    """Query encoder: image -> (f16, f8, f4). ``layer1`` is called ``res2`` officially."""

    def __init__(self, arch: str):
        super().__init__()
        trunk = ResNetTrunk(arch, in_channels=3)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.res2, self.layer2, self.layer3 = trunk.layer1, trunk.layer2, trunk.layer3

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(image))))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f16, f8, f4


class Score(nn.Module):
    """The Quality Assessment Module: predicts the IoU of a mask from its memory feature."""

    def __init__(self, input_chan: int, conv_dim: int = 256, hidden_dim: int = 1024, activation: str = "relu"):
        super().__init__()
        self.conv1 = nn.Conv2d(input_chan, conv_dim, 3, 1, 1)
        self.conv2 = nn.Conv2d(conv_dim, conv_dim, 3, 1, 1)
        self.conv3 = nn.Conv2d(conv_dim, conv_dim, 3, 1, 1)
        self.conv4 = nn.Conv2d(conv_dim, conv_dim, 3, 2, 1)
        side = QAM_INPUT_SIZE // 2
        self.fc1 = nn.Linear(conv_dim * side * side, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, 1)
        self.activation = activation
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        for fc in (self.fc1, self.fc2):
            nn.init.kaiming_uniform_(fc.weight, a=1)
            nn.init.zeros_(fc.bias)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) if self.activation == "sigmoid" else F.relu(x)

    def forward(self, f16: torch.Tensor) -> torch.Tensor:
        """f16 (B, C, h, w) -> quality (B,)."""
        x = F.interpolate(f16, [QAM_INPUT_SIZE, QAM_INPUT_SIZE], mode="bilinear", align_corners=False)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.relu(conv(x))
        x = self._act(self.fc1(x.flatten(1)))
        return self._act(self.fc2(x)).squeeze(1)


class _ASPPModule(nn.Module):
    def __init__(self, inplanes: int, planes: int, kernel_size: int, padding: int, dilation: int):
        super().__init__()
        self.atrous_conv = nn.Conv2d(inplanes, planes, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class ASPP(nn.Module):
    """DeepLab-v3 ASPP at output stride 16 (dilations 1, 6, 12, 18)."""

    def __init__(self, inplanes: int, branch_dim: int = 256, outplanes: Optional[int] = None):
        super().__init__()
        outplanes = inplanes if outplanes is None else outplanes
        self.aspp1 = _ASPPModule(inplanes, branch_dim, 1, padding=0, dilation=1)
        self.aspp2 = _ASPPModule(inplanes, branch_dim, 3, padding=6, dilation=6)
        self.aspp3 = _ASPPModule(inplanes, branch_dim, 3, padding=12, dilation=12)
        self.aspp4 = _ASPPModule(inplanes, branch_dim, 3, padding=18, dilation=18)
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(inplanes, branch_dim, 1, bias=False),
            nn.BatchNorm2d(branch_dim),
            nn.ReLU(inplace=True),
        )
        self.conv1 = nn.Conv2d(5 * branch_dim, outplanes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x)]
        pooled = self.global_avg_pool(x)
        branches.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=True))
        x = self.relu(self.bn1(self.conv1(torch.cat(branches, 1))))
        return self.dropout(x)


class Decoder(nn.Module):
    def __init__(self, indim: int, f8_dim: int, f4_dim: int, dims: tuple[int, int, int] = (512, 256, 256)):
        super().__init__()
        self.compress = ResBlock(indim, dims[0])
        self.up_16_8 = UpsampleBlock(f8_dim, dims[0], dims[1])
        self.up_8_4 = UpsampleBlock(f4_dim, dims[1], dims[2])
        self.pred = nn.Conv2d(dims[2], 1, 3, padding=1)

    def forward(self, f16: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor) -> torch.Tensor:
        """Returns one logit map per batch item at 4x the f4 resolution."""
        x = self.compress(f16)
        x = self.up_16_8(f8, x)
        x = self.up_8_4(f4, x)
        x = self.pred(F.relu(x))
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
