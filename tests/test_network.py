"""The network: state-dict layout, configurations, module shapes, the memory reader."""

import json
from pathlib import Path

import pytest
import torch

from model.aggregate import aggregate_logits, aggregate_wbg
from model.config import LITE, OFFICIAL, infer_config
from model.memory_reader import full_softmax, gaussian_kernel, read_memory, topk_softmax
from model.network import QDMN, others_sum

# Every tensor of the released checkpoint with its shape (690 entries), kept in the repository.
REFERENCE = Path(__file__).resolve().parent / "data" / "qdmn_state_dict_shapes.json"


@pytest.fixture(scope="module")
def official() -> QDMN:
    torch.manual_seed(0)
    return QDMN(OFFICIAL).eval()


@pytest.fixture(scope="module")
def lite() -> QDMN:
    torch.manual_seed(0)
    return QDMN(LITE).eval()


def test_state_dict_matches_released_checkpoint(official):
    reference = json.loads(REFERENCE.read_text())
    mine = {k: list(v.shape) for k, v in official.state_dict().items()}
    assert sorted(mine) == sorted(reference)
    assert {k: v for k, v in mine.items() if reference[k] != v} == {}
    assert len(mine) == 690


def test_official_parameter_count(official):
    n = sum(p.numel() for p in official.parameters())
    assert 104.4e6 < n < 104.6e6


def test_strict_load_of_bare_state_dict(official):
    state = {k: v.clone() for k, v in official.state_dict().items()}
    other = QDMN(infer_config(state))
    other.load_state_dict(state, strict=True)
    assert infer_config(state) == OFFICIAL


def test_config_inferred_for_lite_and_single_object():
    assert infer_config(QDMN(LITE).state_dict(), "sigmoid") == LITE
    so = OFFICIAL.with_(single_object=True)
    state = QDMN(so).state_dict()
    assert state["mask_rgb_encoder.conv1.weight"].shape[1] == 4
    assert infer_config(state).single_object


@pytest.mark.parametrize("name", ["official", "lite"])
def test_forward_shapes(name, official, lite):
    net = official if name == "official" else lite
    cfg = net.config
    c16, c8, c4 = cfg.feature_dims
    image = torch.randn(1, 3, 64, 96)
    f16, f8, f4 = net.encode_query(image)
    assert f16.shape == (1, c16, 4, 6) and f8.shape == (1, c8, 8, 12) and f4.shape == (1, c4, 16, 24)
    masks = torch.rand(3, 1, 64, 96)
    key, value, quality = net.memorize(image, masks)
    assert key.shape == (3, cfg.key_dim, 4, 6) and value.shape == (3, cfg.value_dim, 4, 6)
    assert quality.shape == (3,)
    q = net.query(image, masks.max(0)[0].unsqueeze(0))
    assert q.key.shape == (1, cfg.key_dim, 4, 6) and q.value.shape == (1, cfg.value_dim, 4, 6)
    logits = net.segment(key.flatten(2), value.flatten(2), q)
    assert logits.shape == (3, 1, 64, 96)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_qam_activation_option(activation):
    torch.manual_seed(1)
    net = QDMN(LITE.with_(qam_activation=activation)).eval()
    with torch.no_grad():
        net.score.fc2.bias.fill_(-5.0)
        scores = net.score(torch.randn(4, LITE.feature_dims[0], 6, 10))
    if activation == "sigmoid":
        assert ((scores > 0) & (scores < 1)).all()
    else:
        assert (scores >= 0).all() and (scores == 0).any()


def test_others_sum():
    masks = torch.rand(3, 1, 5, 7)
    others = others_sum(masks)
    for i in range(3):
        expected = sum(masks[j] for j in range(3) if j != i)
        assert torch.allclose(others[i], expected, atol=1e-6)
    assert torch.equal(others_sum(masks[:1]), torch.zeros_like(masks[:1]))


def test_topk_equals_full_softmax_when_k_covers_memory():
    torch.manual_seed(0)
    mk, mv, qk = torch.randn(2, 16, 30), torch.randn(2, 8, 30), torch.randn(1, 16, 12)
    full = read_memory(mk, mv, qk, (3, 4), top_k=None)
    for k in (30, 50):
        assert torch.allclose(read_memory(mk, mv, qk, (3, 4), top_k=k), full, atol=1e-5)
    assert not torch.allclose(read_memory(mk, mv, qk, (3, 4), top_k=3), full, atol=1e-3)


def test_topk_keeps_k_weights_that_sum_to_one():
    aff = torch.randn(1, 40, 6)
    weights = topk_softmax(aff, 5)
    assert ((weights > 0).sum(1) == 5).all()
    assert torch.allclose(weights.sum(1), torch.ones(1, 6))
    # the kept ones are the largest affinities
    top = aff.topk(5, dim=1).indices
    assert (weights.gather(1, top) > 0).all()


def test_gaussian_kernel_centred_on_best_match():
    h, w = 4, 5
    aff = torch.full((1, 2, h * w), -10.0)
    aff[0, 0, 7] = 5.0  # memory cell 0 best matches query (1, 2)
    aff[0, 1, 19] = 5.0  # memory cell 1 best matches query (3, 4)
    g = gaussian_kernel(aff, h, w, sigma=1.0)
    assert g[0, 0, 7] == 1.0 and g[0, 1, 19] == 1.0
    assert torch.isclose(g[0, 0, 8], torch.exp(torch.tensor(-0.5)))
    assert g[0, 0].argmax() == 7


def test_km_softmax_without_top_normalises():
    aff = torch.randn(1, 12, 6)
    g = gaussian_kernel(aff, 2, 3, 5.6)
    w = full_softmax(aff, g)
    assert torch.allclose(w.sum(1), torch.ones(1, 6), atol=1e-6)


def test_invalid_cells_are_never_read():
    torch.manual_seed(0)
    mk, mv, qk = torch.randn(1, 8, 20), torch.randn(1, 4, 20), torch.randn(1, 8, 6)
    invalid = torch.zeros(1, 20, dtype=torch.bool)
    invalid[:, 10:] = True
    mv_poisoned = mv.clone()
    mv_poisoned[..., 10:] = 1e6
    for top_k in (None, 5, 50):
        out = read_memory(mk, mv_poisoned, qk, (2, 3), top_k=top_k, invalid=invalid)
        ref = read_memory(mk[..., :10], mv[..., :10], qk, (2, 3), top_k=top_k)
        assert torch.allclose(out, ref, atol=1e-5)


def test_soft_aggregation():
    prob = torch.tensor([[0.9, 0.2], [0.3, 0.0]]).view(2, 1, 1, 2)
    out = aggregate_wbg(prob, keep_bg=True)
    assert out.shape == (3, 1, 1, 2)
    assert torch.allclose(out.sum(0), torch.ones(1, 1, 2))
    # logits are log-odds of the clamped probabilities, background = prod(1 - p)
    logits = aggregate_logits(prob)
    bg = (1 - prob).prod(0).clamp(1e-7, 1 - 1e-7)
    assert torch.allclose(logits[0], torch.log(bg / (1 - bg)))
    assert out[:, 0, 0, 0].argmax() == 1  # object 1 wins the first pixel
    assert out[:, 0, 0, 1].argmax() == 0  # background wins the second
    onehot = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(2, 1, 1, 2)
    assert aggregate_wbg(onehot)[:, 0, 0].argmax(0).tolist() == [1, 0]


@pytest.mark.parametrize("km", [None, 5.6])
@pytest.mark.parametrize("shape", [(2, 16, 300, 8, 40, (5, 8)), (1, 64, 2000, 32, 1100, (22, 50))])
def test_gathered_topk_readout_equals_the_dense_official_readout(km, shape):
    b, ck, n, cv, hw, grid = shape
    torch.manual_seed(1)
    mk, mv, qk = torch.randn(b, ck, n), torch.randn(b, cv, n), torch.randn(1, ck, hw)
    invalid = torch.zeros(b, n, dtype=torch.bool)
    invalid[-1, n // 2 :] = True  # a late object
    for top_k in (3, 20, 50):
        fast = read_memory(mk, mv, qk, grid, top_k=top_k, km_sigma=km, invalid=invalid)
        dense = read_memory(mk, mv, qk, grid, top_k=top_k, km_sigma=km, invalid=invalid, dense=True)
        assert torch.allclose(fast, dense, rtol=1e-5, atol=1e-6), (top_k, (fast - dense).abs().max())


@pytest.mark.parametrize("single", [True, False])
def test_mirror_init_makes_memory_and_query_keys_agree(single):
    """--mirror_init: with empty masks, a frame's memory key is its query key before gating."""
    torch.manual_seed(0)
    net = QDMN(LITE.with_(single_object=single)).eval()
    image, empty = torch.randn(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)
    masks = [empty] * net.config.mask_channels
    f16_query = net.rgb_encoder(image)[0]
    assert not torch.allclose(net.mask_rgb_encoder(image, *masks), f16_query)
    net.mirror_memory_side()
    f16_memory = net.mask_rgb_encoder(image, *masks)
    assert torch.equal(f16_memory, f16_query)
    assert torch.equal(net.kv_m_f16(f16_memory)[0], net.kv_q_f16(f16_query)[0])
    # The mask channels still act (orthogonally initialised), and the copies are independent.
    assert not torch.equal(net.mask_rgb_encoder(image, *[torch.ones_like(empty)] * len(masks)), f16_query)
    assert net.mask_rgb_encoder.conv1.weight.data_ptr() != net.rgb_encoder.conv1.weight.data_ptr()
