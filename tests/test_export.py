"""Export: a training run's weights file -> a bare state dict the official scripts load."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from model.checkpoint import WEIGHTS_FORMAT, check_official
from model.config import LITE, OFFICIAL
from scripts import export_weights
from util.errors import UserError

SHAPES = Path(__file__).resolve().parent / "data" / "qdmn_state_dict_shapes.json"


def shaped_network(shapes: dict[str, list[int]]) -> nn.Module:
    """A module whose state dict has exactly these keys and shapes (as the official network's)."""
    root = nn.Module()
    for key, shape in shapes.items():
        *path, leaf = key.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_buffer(leaf, torch.empty(shape))
    return root


@pytest.fixture(scope="module")
def shapes() -> dict[str, list[int]]:
    if not SHAPES.is_file():
        pytest.skip(f"{SHAPES} not present")
    return json.loads(SHAPES.read_text())


def test_training_weights_export_to_a_strictly_loadable_bare_state_dict(tmp_path, shapes):
    state = {k: torch.full(shape, 0.5) if k.endswith("weight") else torch.zeros(shape) for k, shape in shapes.items()}
    state = {k: v.long() if k.endswith("num_batches_tracked") else v for k, v in state.items()}
    trained = tmp_path / "run_1000.pth"
    torch.save({"format": WEIGHTS_FORMAT, "network": state, "config": OFFICIAL.with_(qam_activation="relu").to_dict()}, trained)
    exported = tmp_path / "QDMN_mine.pth"
    export_weights.main([str(trained), str(exported), "--official"])
    bare = torch.load(exported, map_location="cpu", weights_only=True)
    assert set(bare) == set(shapes)  # no wrapper keys, no "module." prefix
    network = shaped_network(shapes)
    network.load_state_dict(bare, strict=True)
    assert torch.equal(network.get_buffer("score.fc2.weight"), state["score.fc2.weight"])


def test_official_export_refuses_a_sigmoid_qam_unless_forced(capsys):
    with pytest.raises(UserError, match="sigmoid"):
        check_official(OFFICIAL.with_(qam_activation="sigmoid"), force=False)
    check_official(OFFICIAL.with_(qam_activation="sigmoid"), force=True)
    assert "WARNING" in capsys.readouterr().err
    with pytest.raises(UserError, match="backbone"):
        check_official(LITE, force=True)
    check_official(OFFICIAL.with_(qam_activation="relu"), force=False)
