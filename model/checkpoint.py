"""Every checkpoint file format, in one place: loading and saving network weights safely.

Every load goes through ``torch.load(..., weights_only=True)``: a checkpoint from the
internet cannot run code. Files are recognised by their content:

* a bare state dict in the official layout (the released QDMN checkpoint, and what
  ``--export_official`` writes): the configuration is inferred from the shapes;
* this project's weights file ``{"format": "qdmn-weights", "network", "config"}``;
* a training checkpoint ``{"it", "network", "optimizer", "scheduler"}``;
* anything else (an STCN or MiVOS checkpoint, a truncated file) is explained.

Training checkpoints are written by ``model/model.py`` (``TRAINING_FORMAT``) and read
here (``read_training_checkpoint``); ``export_payload`` is what
``scripts/export_weights.py`` writes (a weights file, or the official bare state dict).
"""

from __future__ import annotations

import errno
import os
import pickle
import stat
import sys
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

import torch

from model.config import BACKBONE_CHANNELS, OFFICIAL, QAM_ACTIVATIONS, ModelConfig, infer_config
from util.errors import UserError
from util.write_gate import writing

WEIGHTS_FORMAT = "qdmn-weights"
TRAINING_FORMAT = "qdmn-training"
TRAINING_KEYS = {"it", "network", "optimizer", "scheduler"}


UNSAFE_MARKERS = ("GLOBAL", "Unsupported global", "is blocked")  # weights_only refused a class or function: code


def safe_load(path: str | os.PathLike, flag: str = "--model") -> Any:
    """``torch.load`` with ``weights_only=True``; failures become one-line UserErrors naming ``flag``
    (the flag, or positional argument, that gave ``path``)."""
    path = Path(path)
    check_checkpoint_path(path, flag)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = _weights_only_reason(e)
        if not any(marker in str(e) for marker in UNSAFE_MARKERS):  # a damaged pickle, not a forbidden class
            raise UserError(f"{path}: cannot read checkpoint (its contents are damaged: {_weights_only_reason(e)}); "
                            "the file is truncated or corrupt, download or copy it again") from None
        raise UserError(
            f"{path}: refused to load: it is not a plain weights file and could run code when unpickled ({first}); "
            "use a checkpoint from a trusted source"
        ) from None
    except Exception as e:  # noqa: BLE001 - garbage makes the unpickler fail in many ways (KeyError, IndexError, ...)
        reason = _first_line(e, type(e).__name__)
        raise UserError(
            f"{path}: cannot read checkpoint ({type(e).__name__}: {reason}); "
            "the file is truncated or not a PyTorch checkpoint, download it again"
        ) from None


def check_checkpoint_path(path: Path, flag: str = "--model") -> None:
    """A UserError naming ``flag`` unless ``path`` is a readable file (not a folder, not a symbolic-link loop)."""
    try:
        st = path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UserError(f"{path}: is a symbolic-link loop; point {flag} at a checkpoint file") from None
        hint = " (download it with `python scripts/download_models.py`)" if flag == "--model" else ""
        raise UserError(f"{path}: checkpoint not found; check {flag}{hint}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a folder; {flag} takes a checkpoint file (.pth), e.g. one inside it")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: is not a regular file; {flag} takes a checkpoint file (.pth)")


def _first_line(e: BaseException, default: str) -> str:
    return (str(e).strip().splitlines() or [""])[0] or default


def _weights_only_reason(e: BaseException) -> str:
    """The unpickler's own reason, without PyTorch's advice to load with ``weights_only=False``."""
    text = str(e)
    tail = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else text
    lines = [line.strip() for line in tail.splitlines() if line.strip() and "weights_only" not in line and "Weights only" not in line]
    return lines[0] if lines else "unreadable pickle"


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


def atomic_save(obj: Any, path: str | os.PathLike, flag: str = "--output") -> None:
    """``torch.save`` through the write gate (``util/write_gate``): a temporary file in the same folder,
    fsync, then a rename over ``path``.

    ``path`` must not be an input or a file of the user's; a full disk (PyTorch's failed
    write included), a read-only file system or a permission error is a UserError naming
    the file, and ``path`` keeps its previous content. ``flag`` names the flag that chose
    ``path`` in messages.
    """
    with writing(path, flag) as tmp, open(tmp, "xb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


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


# --------------------------------------------------------------------------- training checkpoints
def read_network_file(obj: Any, path: str | Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Weights and configuration of a ``--load_network`` file (weights file or bare state dict)."""
    return extract_weights(obj, path)


def read_training_checkpoint(obj: Any, path: str | Path) -> dict[str, Any]:
    """Validate a ``--load_model`` file: a training checkpoint, not a weights file."""
    if not isinstance(obj, dict) or not TRAINING_KEYS <= set(obj):
        hint = (
            " (start from it with --load_network)"
            if isinstance(obj, dict) and (obj.get("format") == WEIGHTS_FORMAT or "network" not in obj)
            else ""
        )
        raise UserError(f"{path}: this is {describe(obj)}; --load_model needs a training checkpoint (<id>_checkpoint.pth){hint}")
    check_finite(weights_network(obj, path), path)  # NaN weights would only make every loss non-finite
    return obj


def checkpoint_config(checkpoint: dict[str, Any], path: str | Path) -> ModelConfig:
    """The model configuration of a training checkpoint (inferred for the official ones, ReLU QAM)."""
    if "config" in checkpoint:
        return weights_config(checkpoint, path)
    _, config = extract_weights(checkpoint["network"], path)
    return config


# --------------------------------------------------------------------------- export
def weights_of(obj, path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Weights and configuration of a weights file, or of a training checkpoint's network."""
    if isinstance(obj, dict) and TRAINING_KEYS <= set(obj):
        network = obj["network"]
        if "config" in obj:
            return dict(network), ModelConfig.from_dict(obj["config"])
        obj = network
    return extract_weights(obj, path)


def training_frame_size(obj) -> dict:
    """``{"train_size": [h, w]}`` from a training checkpoint's hyperparameters (--size, --crop_width)."""
    hyper = obj.get("hyperparameters") if isinstance(obj, dict) else None
    size = hyper.get("size") if isinstance(hyper, dict) else None
    return {"train_size": [size, hyper.get("crop_width") or size]} if isinstance(size, int) else {}


def check_official(config: ModelConfig, force: bool) -> None:
    """Refuse (or, with ``force``, warn loudly about) what the official code cannot carry."""
    if config.backbone != "resnet50":
        raise UserError(f"--official: the {config.backbone} backbone does not fit the official network (ResNet-50 only)")
    if config.qam_activation != "relu":
        message = (
            f"the QAM of these weights ends in a {config.qam_activation}; the official code applies ReLU, so its quality "
            f"scores (and memory admissions) would be wrong. Export without --official for this project's scripts"
        )
        if not force:
            raise UserError(f"--official: {message}, or pass --force")
        print(f"WARNING: {message}; exported anyway (--force)", file=sys.stderr)


def export_payload(source: Any, path: str | os.PathLike, official: bool = False, half: bool = False,
                   force: bool = False) -> tuple[Any, ModelConfig]:
    """What ``scripts/export_weights.py`` writes for ``source`` (a training checkpoint or weights):
    a weights file, or (``official``) a bare state dict in the released layout; float16 with ``half``."""
    state, config = weights_of(source, path)
    if official:
        check_official(config, force)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = state if official else {"format": WEIGHTS_FORMAT, "network": state, "config": config.to_dict()}
    train_size = trained_frame_size(source) or trained_frame_size(training_frame_size(source))
    if train_size is not None and not official:
        payload["train_size"] = list(train_size)
    return payload, config
