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
from pathlib import Path
from typing import Any, Optional

import torch

from model.config import ModelConfig, infer_config
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
        state, config = dict(obj["network"]), ModelConfig.from_dict(obj["config"])
        if qam_activation is not None:
            config = config.with_(qam_activation=qam_activation)
        return state, config
    if what == "a QDMN state dict":
        state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        state = {k.removeprefix("module."): v for k, v in state.items()}
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
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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


def weights_payload(model: torch.nn.Module, config: ModelConfig) -> dict[str, Any]:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"format": WEIGHTS_FORMAT, "network": state, "config": config.to_dict()}
