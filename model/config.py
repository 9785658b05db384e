"""Model configurations.

The default configuration is the official QDMN architecture (ResNet-50, 104.5 M
parameters), whose state dict matches the released checkpoint key for key. The
``lite`` configuration keeps every module name but uses a ResNet-18 backbone and
narrower heads, so that training and tests are practical on a CPU.

A configuration travels inside every checkpoint this project writes (``config`` key);
a bare state dict, such as the released checkpoint, is recognised from its tensor
shapes (:func:`infer_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

QAM_ACTIVATIONS = ("relu", "sigmoid")


@dataclass(frozen=True)
class ModelConfig:
    """Every architectural choice that changes the state dict or the forward pass."""

    backbone: str = "resnet50"  # "resnet50" (official) or "resnet18" (lite)
    key_dim: int = 128
    value_dim: int = 512
    aspp_branch_dim: int = 256
    decoder_dims: tuple[int, int, int] = (512, 256, 256)  # compress, up_16_8, up_8_4
    qam_conv_dim: int = 256
    qam_hidden_dim: int = 1024
    # The official code at HEAD applies ReLU after fc1/fc2; the paper says sigmoid.
    qam_activation: str = "relu"
    single_object: bool = False  # stage 0: 4-channel mask encoder (image + mask)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONE_CHANNELS:
            raise ValueError(f"unknown backbone {self.backbone!r}; use one of {sorted(BACKBONE_CHANNELS)}")
        if self.qam_activation not in QAM_ACTIVATIONS:
            raise ValueError(f"qam_activation must be one of {QAM_ACTIVATIONS}, not {self.qam_activation!r}")

    @property
    def feature_dims(self) -> tuple[int, int, int]:
        """Channels of the backbone's f16, f8 and f4 features."""
        return BACKBONE_CHANNELS[self.backbone]

    @property
    def mask_channels(self) -> int:
        """Extra input channels of the mask encoder: the mask, plus the other objects' sum."""
        return 1 if self.single_object else 2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["decoder_dims"] = list(self.decoder_dims)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "decoder_dims" in known:
            known["decoder_dims"] = tuple(known["decoder_dims"])
        return cls(**known)

    def with_(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)


BACKBONE_CHANNELS: dict[str, tuple[int, int, int]] = {
    "resnet50": (1024, 512, 256),
    "resnet18": (256, 128, 64),
}

OFFICIAL = ModelConfig()
LITE = ModelConfig(
    backbone="resnet18",
    key_dim=64,
    value_dim=128,
    aspp_branch_dim=64,
    decoder_dims=(128, 64, 64),
    qam_conv_dim=64,
    qam_hidden_dim=256,
    qam_activation="sigmoid",
)
PRESETS: dict[str, ModelConfig] = {"official": OFFICIAL, "lite": LITE}


def infer_config(state_dict: Mapping[str, Any], qam_activation: str = "relu") -> ModelConfig:
    """Recognise the architecture of a bare state dict from its tensor shapes.

    A bare state dict carries no activation; the released checkpoint was trained with
    ReLU in the QAM head, which is therefore the default here.
    """
    conv1 = state_dict["mask_rgb_encoder.conv1.weight"]
    backbone = "resnet50" if "rgb_encoder.layer3.0.conv3.weight" in state_dict else "resnet18"
    return ModelConfig(
        backbone=backbone,
        key_dim=int(state_dict["kv_m_f16.key_proj.weight"].shape[0]),
        value_dim=int(state_dict["kv_m_f16.val_proj.weight"].shape[0]),
        aspp_branch_dim=int(state_dict["aspp.aspp1.atrous_conv.weight"].shape[0]),
        decoder_dims=(
            int(state_dict["decoder.compress.conv1.weight"].shape[0]),
            int(state_dict["decoder.up_16_8.out_conv.conv1.weight"].shape[0]),
            int(state_dict["decoder.up_8_4.out_conv.conv1.weight"].shape[0]),
        ),
        qam_conv_dim=int(state_dict["score.conv1.weight"].shape[0]),
        qam_hidden_dim=int(state_dict["score.fc1.weight"].shape[0]),
        qam_activation=qam_activation,
        single_object=int(conv1.shape[1]) == 4,
    )
