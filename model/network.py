"""The QDMN network, with the official state-dict layout.

One module serves training and evaluation. Its attributes (``mask_rgb_encoder``,
``rgb_encoder``, ``kv_m_f16``, ``kv_q_f16``, ``decoder``, ``aspp``, ``score``,
``concat_conv``) produce exactly the keys of the released checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from model.config import OFFICIAL, PRESETS, ModelConfig
from model.memory_reader import read_memory
from model.modules import ASPP, Decoder, KeyValue, MaskRGBEncoder, RGBEncoder, Score
from model.resnet import load_imagenet_weights

DEFAULT_TOP_K = 50
DEFAULT_KM_SIGMA = 5.6
# Largest affinity matrix (elements) read in one batch; objects are chunked above it.
AFFINITY_BUDGET = 1 << 27


@dataclass
class QueryFeatures:
    """Everything the decoder needs from a query frame."""

    f16: torch.Tensor  # enhanced f16 (1, C16, h, w)
    f8: torch.Tensor
    f4: torch.Tensor
    key: torch.Tensor  # (1, CK, h, w)
    value: torch.Tensor  # (1, CV, h, w)


def others_sum(masks: torch.Tensor) -> torch.Tensor:
    """For each object i, the sum of the masks of all objects j != i (same shape)."""
    k = masks.shape[0]
    if k == 1:
        return torch.zeros_like(masks)
    select = 1 - torch.eye(k, dtype=masks.dtype, device=masks.device)
    return (select @ masks.reshape(k, -1)).view_as(masks)


_CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("atrous_conv", "bn"))


def _fold_children(module: nn.Module) -> None:
    """Fold the batch norms that directly follow a convolution inside ``module``."""
    for conv_name, bn_name in _CONV_BN_PAIRS:
        conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                module[i], module[i + 1] = fuse_conv_bn_eval(module[i], module[i + 1]), nn.Identity()


class QDMN(nn.Module):
    def __init__(self, config: ModelConfig = OFFICIAL, top_k: Optional[int] = DEFAULT_TOP_K, km_sigma: Optional[float] = None):
        super().__init__()
        self.config = config
        self.top_k = top_k
        self.km_sigma = km_sigma
        self.dense_readout = False  # True: the official scatter + bmm top-k readout (reference for tests)
        c16, c8, c4 = config.feature_dims
        mem_dim = 2 * config.value_dim  # readout ‖ query value
        self.mask_rgb_encoder = MaskRGBEncoder(config.backbone, config.mask_channels)
        self.rgb_encoder = RGBEncoder(config.backbone)
        self.kv_m_f16 = KeyValue(c16, config.key_dim, config.value_dim)
        self.kv_q_f16 = KeyValue(c16, config.key_dim, config.value_dim)
        self.decoder = Decoder(mem_dim, c8, c4, config.decoder_dims)
        self.aspp = ASPP(mem_dim, config.aspp_branch_dim, mem_dim)
        self.score = Score(c16, config.qam_conv_dim, config.qam_hidden_dim, config.qam_activation)
        self.concat_conv = nn.Conv2d(c16 + 1, 1, 3, 1, 1)

    # ----------------------------------------------------------------- initialisation
    def load_imagenet(self, source: dict[str, torch.Tensor]) -> None:
        """Initialise both encoders from a torchvision ResNet state dict."""
        for encoder in (self.mask_rgb_encoder, self.rgb_encoder):
            trunk_view = _TrunkView(encoder)
            load_imagenet_weights(trunk_view, source)  # type: ignore[arg-type]

    def mirror_memory_side(self) -> None:
        """Make the memory side start as a copy of the query side.

        With ImageNet weights both encoders start from the same trunk, so a memory frame
        and a query frame are embedded alike from the first iteration. Trained from
        scratch, two independent random encoders (and two random key projections) give
        memory and query keys that do not correspond, and matching must first be learnt
        from nothing. Copying the query trunk into the mask encoder (its mask channels
        initialised orthogonally, as for ImageNet weights) and ``kv_q_f16`` into
        ``kv_m_f16`` restores the agreement; training then lets the two sides diverge.
        """
        trunk = _TrunkView(self.rgb_encoder).state_dict()  # copied into the mask encoder's own tensors
        load_imagenet_weights(_TrunkView(self.mask_rgb_encoder), trunk)  # type: ignore[arg-type]
        self.kv_m_f16.load_state_dict(self.kv_q_f16.state_dict())

    def optimize_for_inference(self, amp_dtype: Optional[torch.dtype] = None) -> QDMN:
        """Fold every batch norm into its convolution and switch to channels_last.

        For evaluation only: the folded network no longer has the checkpoint's batch-norm
        keys. channels_last lets oneDNN and Tensor Cores convolve NHWC without reorders.
        Both change the order of float operations, so outputs differ from the
        straightforward network by rounding only (masks are tested against it).
        ``amp_dtype`` (for runs under autocast) stores the weights in that type once,
        instead of autocast casting them at every call: the same numbers, less traffic.
        """
        self.eval()
        for module in list(self.modules()):
            _fold_children(module)
        self.to(memory_format=torch.channels_last)
        return self if amp_dtype is None else self.to(amp_dtype)

    # ----------------------------------------------------------------- query side
    def encode_query(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.rgb_encoder(image)

    def enhance_query(self, f16: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gate f16 by the previous frame's mask: ``f16 · σ(concat_conv(f16 ‖ prior))``.

        ``prior`` (B, 1, H, W) is resized bilinearly to the f16 grid.
        """
        prior = F.interpolate(prior, size=f16.shape[-2:], mode="bilinear", align_corners=False)
        gate = torch.sigmoid(self.concat_conv(torch.cat([f16, prior], 1)))
        f16 = f16 * gate
        key, value = self.kv_q_f16(f16)
        return f16, key, value

    def query(self, image: torch.Tensor, prior: torch.Tensor) -> QueryFeatures:
        f16, f8, f4 = self.encode_query(image)
        f16, key, value = self.enhance_query(f16, prior)
        return QueryFeatures(f16, f8, f4, key, value)

    # ----------------------------------------------------------------- memory side
    def encode_memory(self, image: torch.Tensor, masks: torch.Tensor, others: Optional[torch.Tensor] = None):
        """(B,3,H,W), (B,1,H,W)[, (B,1,H,W)] -> key (B,CK,h,w), value (B,CV,h,w), quality (B,)."""
        extra = (masks,) if self.config.single_object else (masks, others)
        f16 = self.mask_rgb_encoder(image, *extra)
        key, value = self.kv_m_f16(f16)
        return key, value, self.score(f16)

    def memorize(self, image: torch.Tensor, masks: torch.Tensor):
        """Memorise one frame for K objects.

        image (1, 3, H, W); masks (K, 1, H, W) probabilities. Returns key (K, CK, h, w),
        value (K, CV, h, w) and the QAM quality (K,).
        """
        k = masks.shape[0]
        return self.encode_memory(image.expand(k, -1, -1, -1), masks, others_sum(masks))

    # ----------------------------------------------------------------- read + decode
    def decode(self, readout: torch.Tensor, q: QueryFeatures) -> torch.Tensor:
        """Readout (K, CV, h, w) -> logits (K, 1, H, W)."""
        x = torch.cat([readout, q.value.expand(readout.shape[0], -1, -1, -1)], 1)
        return self.decoder(self.aspp(x), q.f8, q.f4)

    def read(self, mem_key: torch.Tensor, mem_value: torch.Tensor, q: QueryFeatures, invalid: Optional[torch.Tensor] = None):
        """Memory readout: keys (K, CK, N), values (K, CV, N) -> (K, CV, h, w).

        K is the number of objects of one query frame (query batch 1, evaluation) or
        the batch size (one query per item, training).
        """
        k, _, n = mem_key.shape
        h, w = q.key.shape[-2:]
        qk = q.key.flatten(2)
        chunk = max(1, AFFINITY_BUDGET // max(1, n * h * w))
        parts = []
        for i in range(0, k, chunk):
            inv = None if invalid is None else invalid[i : i + chunk]
            qk_i = qk if qk.shape[0] == 1 else qk[i : i + chunk]  # one query per item in training batches
            mk, mv = mem_key[i : i + chunk], mem_value[i : i + chunk]
            parts.append(read_memory(mk, mv, qk_i, (h, w), self.top_k, self.km_sigma, inv, dense=self.dense_readout))
        return torch.cat(parts, 0).view(k, -1, h, w)

    def segment(self, mem_key: torch.Tensor, mem_value: torch.Tensor, q: QueryFeatures, invalid: Optional[torch.Tensor] = None):
        """Logits (K, 1, H, W) for the query frame."""
        return self.decode(self.read(mem_key, mem_value, q, invalid), q)


class _TrunkView(nn.Module):
    """Presents an encoder with torchvision's names (``res2`` -> ``layer1``) for weight loading."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.conv1, self.bn1 = encoder.conv1, encoder.bn1
        self.layer1 = encoder.layer1 if hasattr(encoder, "layer1") else encoder.res2
        self.layer2, self.layer3 = encoder.layer2, encoder.layer3


def random_network(config_name: str = "official", seed: int = 0, qam_activation: str | None = None) -> QDMN:
    """A QDMN with deterministic random weights and non-trivial batch-norm statistics."""
    config = PRESETS[config_name]
    if qam_activation:
        config = config.with_(qam_activation=qam_activation)
    torch.manual_seed(seed)
    network = QDMN(config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, buf in network.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(1 + torch.rand(buf.shape, generator=generator))
    return network
