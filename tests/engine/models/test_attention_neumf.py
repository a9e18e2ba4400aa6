"""Attention NeuMF: the three attention formulas against NumPy, weights, parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import ParameterError
from engine.models.attention_neumf import (
    ORDERS,
    AttentionNeuMF,
    TokenSelfAttention,
    neumann_first,
    neumann_second,
    softmax_attention,
)


def np_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# A small token matrix worked through by hand in NumPy: 3 tokens of width 4.
W = np.array([[0.5, -1.0, 0.2, 0.0], [1.5, 0.3, -0.4, 0.8], [-0.2, 0.7, 1.1, -0.6]])


def test_neumann_first_matches_numpy():
    s = W @ W.T / np.sqrt(4)
    expected = np_softmax(s) @ W
    out, weights = neumann_first(torch.tensor(W))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(weights.numpy(), np_softmax(s), rtol=1e-12)


def test_neumann_second_matches_numpy():
    s = W @ W.T / np.sqrt(4)
    first = np_softmax(s) @ W
    expected = first - np_softmax(s @ s) @ W  # (W Wᵀ)² / d with the √d scaling of S
    out, a1, a2 = neumann_second(torch.tensor(W))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a2.numpy(), np_softmax(s @ s), rtol=1e-12)
    # Not the first-order output: the second term matters on this input.
    assert np.abs(out.numpy() - first).max() > 0.1


def test_softmax_attention_matches_numpy():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(3, 2, 4, 8))  # batch of 2 sequences, 4 tokens, width 8
    expected = np_softmax(q @ k.transpose(0, 2, 1) / np.sqrt(8)) @ v
    out, weights = softmax_attention(*(torch.tensor(a) for a in (q, k, v)))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert weights.shape == (2, 4, 4)


@pytest.mark.parametrize("order", ORDERS)
def test_multi_head_layer_applies_the_formula_per_head(order):
    """The layer's output equals x + O[head_1; head_2] computed head by head in NumPy."""
    torch.manual_seed(0)
    layer = TokenSelfAttention(dim=8, heads=2, order=order).double()
    x = torch.randn(5, 4, 8, dtype=torch.float64)
    out, weights = layer(x)
    proj = layer.project_in(x).detach().numpy()
    heads = []
    for h in range(2):
        cols = lambda part: proj[..., part * 8 + h * 4 : part * 8 + (h + 1) * 4]  # noqa: E731
        if order == "softmax":
            q, k, v = cols(0), cols(1), cols(2)
            heads.append(np_softmax(q @ k.transpose(0, 2, 1) / 2.0) @ v)
        else:
            w = cols(0)
            s = w @ w.transpose(0, 2, 1) / 2.0
            head = np_softmax(s) @ w
            if order == "second":
                head = head - np_softmax(s @ s) @ w
            heads.append(head)
    o = layer.project_out
    expected = x.numpy() + np.concatenate(heads, -1) @ o.weight.detach().numpy().T + o.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    assert all(w.shape == (5, 2, 4, 4) for w in weights)


@pytest.mark.parametrize("order", ORDERS)
def test_fitted_attention_weights_are_distributions(order, tiny_splits):
    model = AttentionNeuMF(factors=8, layers="8", heads=2, attention_order=order, epochs=2, device="cpu")
    model.fit(tiny_splits.train)
    users, items = np.array([0, 1, 2]), np.array([3, 0, 5])
    out = model.attention_weights(users, items)
    expected = {"embeddings": (3, 2, 4, 4), "fused": (3, 2, 2, 2)}
    if order == "second":
        expected.update(embeddings_second=(3, 2, 4, 4), fused_second=(3, 2, 2, 2))
    assert {k: v.shape for k, v in out.items()} == expected
    for w in out.values():
        assert (w >= 0).all()
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)


def test_bad_attention_order_names_the_choices(tiny_splits):
    with pytest.raises(ParameterError, match="softmax.*first.*second"):
        AttentionNeuMF.from_params(attention_order="third")
    model = AttentionNeuMF(attention_order="third", epochs=1, device="cpu")
    with pytest.raises(ParameterError, match="softmax, first, second"):
        model.fit(tiny_splits.train)


def test_heads_must_divide_factors(tiny_splits):
    with pytest.raises(ParameterError, match="heads"):
        AttentionNeuMF(factors=10, heads=4, epochs=1, device="cpu").fit(tiny_splits.train)


@pytest.fixture(scope="module")
def tiny_splits():
    from tests.engine.models.test_contract import SPLITS

    return SPLITS


def test_pretrained_start_is_exactly_fused_neumf():
    from engine.models.ncf_modules import NCF, GMFTower, MLPTower

    torch.manual_seed(0)
    gmf, mlp = NCF(GMFTower(7, 9, 4)), NCF(mlp=MLPTower(7, 9, 4, (8, 3)))
    for module in (gmf, mlp):  # trained-looking weights, not the tiny initialisation
        for param in module.parameters():
            torch.nn.init.normal_(param)
    fused = NCF.fuse(gmf, mlp, alpha=0.3)
    attention = AttentionNeuMF(factors=4, layers="8,3", heads=2)
    attention.n_users_, attention.n_items_ = 7, 9
    module = attention._build_module().load_pretrained(gmf, mlp, alpha=0.3)
    users, items = torch.arange(7).repeat(9), torch.arange(9).repeat_interleave(7)
    with torch.no_grad():
        torch.testing.assert_close(module(users, items), fused(users, items), rtol=1e-5, atol=1e-5)
        everyone = torch.arange(7)
        torch.testing.assert_close(module.score_all(everyone), fused.score_all(everyone), rtol=1e-5, atol=1e-5)


def test_pretrained_fit_reports_three_stages(tiny_splits):
    events = []
    model = AttentionNeuMF(factors=4, layers="4", heads=2, epochs=2, device="cpu")
    model.fit(tiny_splits.train, val=tiny_splits.val, callback=events.append)
    stages = [e["stage"] for e in events]
    # GMF and MLP are pre-trained together (one event of each per epoch), then the fine-tuning.
    assert stages == ["gmf", "mlp", "gmf", "mlp", "attention-neumf", "attention-neumf"]
    assert [e["epoch"] for e in events] == [1, 1, 2, 2, 3, 4]
