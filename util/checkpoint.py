"""Loading and saving network weights safely.

Every load goes through ``torch.load(..., weights_only=True)``: a checkpoint from the
internet cannot run code. Files are recognised by their content:

* a bare state dict in the official layout (the released QDMN checkpoint, and what
  ``--export_official`` writes): the configuration is inferred from the shapes;
* this project's weights file ``{"format": "qdmn-weights", "network", "config"}``;
* a training checkpoint ``{"it", "network", "optimizer", "scheduler"}``;
* anything else (an STCN or MiVOS checkpoint, a truncated file) is explained.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

import torch

from model.config import BACKBONE_CHANNELS, OFFICIAL, QAM_ACTIVATIONS, ModelConfig, infer_config
from util.errors import UserError

WEIGHTS_FORMAT = "qdmn-weights"
TRAINING_KEYS = {"it", "network", "optimizer", "scheduler"}


def safe_load(path: str | os.PathLike) -> Any:
    """``torch.load`` with ``weights_only=True``; failures become one-line UserErrors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found; check --model (download it with scripts/download_models.py)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise UserError(
            f"{path}: refused to load: it is not a plain weights file and could run code when unpickled ({first}); "
            "use a checkpoint from a trusted source"
        ) from None
    except Exception as e:  # noqa: BLE001 - garbage makes the unpickler fail in many ways (KeyError, IndexError, ...)
        reason = (str(e).strip().splitlines() or [""])[0] or type(e).__name__
        raise UserError(
            f"{path}: cannot read checkpoint ({type(e).__name__}: {reason}); "
            "the file is truncated or not a PyTorch checkpoint, download it again"
        ) from None


def describe(obj: Any) -> str:
    """A short human description of what a loaded checkpoint is."""
    if not isinstance(obj, Mapping):
        return f"a {type(obj).__name__}, not a state dict"
    keys = set(obj)
    if TRAINING_KEYS <= keys:
        return "a training checkpoint (*_checkpoint.pth with it/network/optimizer/scheduler)"
    if obj.get("format") == WEIGHTS_FORMAT:
        return "a QDMN weights file"
    names = [k for k in keys if isinstance(k, str)]
    if any(k.startswith(("key_encoder.", "value_encoder.", "key_proj.")) for k in names):
        return "an STCN/MiVOS-style checkpoint (key_encoder/value_encoder), not QDMN"
    if any(k.startswith("mask_rgb_encoder.") for k in names):
        return "a QDMN state dict"
    return f"a dict with keys {sorted(map(str, keys))[:5]}..."


def extract_weights(obj: Any, path: str | os.PathLike, qam_activation: Optional[str] = None) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The network state dict and configuration of a weights file (not a training checkpoint)."""
    what = describe(obj)
    if isinstance(obj, Mapping) and obj.get("format") == WEIGHTS_FORMAT:
        state, config = check_finite(weights_network(obj, path), path), weights_config(obj, path)
        if qam_activation is not None:
            config = config.with_(qam_activation=qam_activation)
        return state, config
    if what == "a QDMN state dict":
        state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        state = check_finite({k.removeprefix("module."): v for k, v in state.items()}, path)
        try:
            return state, infer_config(state, qam_activation or "relu")
        except KeyError as e:
            raise UserError(f"{path}: QDMN state dict lacks {e}; the file is incomplete") from None
    if TRAINING_KEYS <= set(obj if isinstance(obj, Mapping) else ()):
        raise UserError(
            f"{path}: this is {what}; network weights were expected. Use the matching weights file "
            "(<id>_<it>.pth), or train.py --load_model to resume training"
        )
    raise UserError(f"{path}: this is {what}; a QDMN weights file was expected")


def weights_network(obj: Mapping, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``network`` entry of a weights file: a mapping of names to tensors, or a UserError."""
    network = obj.get("network")
    if not isinstance(network, Mapping) or not all(isinstance(v, torch.Tensor) for v in network.values()):
        raise UserError(f"{path}: the weights file's 'network' entry is missing or not a state dict; the file is damaged")
    return dict(network)


def weights_config(obj: Mapping, path: str | os.PathLike) -> ModelConfig:
    """The ``config`` entry of a weights file as a :class:`ModelConfig`, or a UserError naming the problem."""
    raw = obj.get("config")
    if not isinstance(raw, Mapping):
        raise UserError(f"{path}: the weights file has no valid 'config' entry ({type(raw).__name__}); the file is damaged")
    try:
        config = ModelConfig.from_dict(raw)
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"{path}: the weights file's 'config' is malformed ({e}); the file is damaged") from None
    for field in fields(ModelConfig):
        value = getattr(config, field.name)
        if not _valid_field(field.name, value, getattr(OFFICIAL, field.name)):
            raise UserError(f"{path}: the weights file's 'config' has an invalid {field.name} ({value!r}); the file is damaged")
    return config


def _valid_field(name: str, value: Any, official: Any) -> bool:
    """A configuration value of the official value's type: positive sizes, a known backbone and activation."""
    if type(value) is not type(official):
        return False
    if isinstance(value, tuple):
        return len(value) == len(official) and all(type(v) is int and v > 0 for v in value)
    if type(value) is int:
        return value > 0
    return {"backbone": BACKBONE_CHANNELS, "qam_activation": QAM_ACTIVATIONS}.get(name, (value,)).__contains__(value)


def check_finite(state: dict[str, torch.Tensor], path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``state`` unless a floating tensor holds NaN or infinity (named: the first one)."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{path}: tensor {name} holds NaN or infinite values; these weights would segment nothing, use another file")
    return state


def load_weights(path: str | os.PathLike, qam_activation: Optional[str] = None) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    return extract_weights(safe_load(path), path, qam_activation)


def check_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Load strictly; on mismatch, name the differing keys instead of a long traceback."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise UserError(f"{path}: weights do not fit the network: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A full disk or a permission error is a UserError naming the file; ``path`` keeps
    its previous content.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_then_rename(obj, path)
    except OSError as e:
        reason = e.strerror or str(e)
        raise UserError(f"{path}: cannot write ({reason}); free disk space or fix the permissions; the previous file is intact") from None


def _write_then_rename(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def weights_payload(model: torch.nn.Module, config: ModelConfig, train_size: Optional[tuple[int, int]] = None) -> dict[str, Any]:
    """This project's weights file; ``train_size`` (height, width) records the frames the model was trained on."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {"format": WEIGHTS_FORMAT, "network": state, "config": config.to_dict()}
    if train_size is not None:
        payload["train_size"] = [int(train_size[0]), int(train_size[1])]
    return payload


def trained_frame_size(obj: Any) -> Optional[tuple[int, int]]:
    """(height, width) of the training frames a weights file records; None when it does not (bare state dicts)."""
    size = obj.get("train_size") if isinstance(obj, Mapping) else None
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    return None
