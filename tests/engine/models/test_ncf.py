"""GMF, MLP and NeuMF: the paper's formulas on hand-set weights, fusion, layers, and ML-100k."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import engine.models.neural as neural
from engine.data import from_frames, leave_last_out
from engine.errors import ParameterError
from engine.models.ncf import GMF, MLP, NeuMF, pretrain_towers
from engine.models.ncf_modules import NCF, GMFTower, MLPTower
from engine.models.neural import parse_layers
from engine.models.popularity import Popularity
from engine.models.registry import create_model


def _tiny_splits():
    rng = np.random.default_rng(0)
    rows = [(u, int(i), 1.0, u * 100 + t) for u in range(20) for t, i in enumerate(rng.choice(15, 6, replace=False))]
    return leave_last_out(from_frames("tiny", pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])))


SPLITS = _tiny_splits()


def _fitted(cls, **params):
    return cls(factors=2, epochs=1, device="cpu", **params).fit(SPLITS.train)


def _set(param: torch.nn.Parameter, values):
    with torch.no_grad():
        param.copy_(torch.tensor(values, dtype=param.dtype))


# ---- the formulas on hand-set weights --------------------------------------------------------------
def test_gmf_scores_h_dot_elementwise_product_plus_bias():
    model = _fitted(GMF)
    m = model.module_
    _set(m.gmf.user.weight[0], [1.0, 2.0])
    _set(m.gmf.item.weight[3], [3.0, -1.0])
    _set(m.predict.weight, [[0.5, 1.0]])
    _set(m.predict.bias, [0.1])
    # p ⊙ q = (3, -2); h · (p ⊙ q) + b = 1.5 - 2 + 0.1
    expected_logit = -0.4
    assert model.score([0], [3])[0] == pytest.approx(expected_logit, abs=1e-6)  # paired path
    assert model.score([0])[0, 3] == pytest.approx(expected_logit, abs=1e-6)  # full-row path
    prob = torch.sigmoid(torch.tensor(model.score([0], [3]))).item()
    assert prob == pytest.approx(1 / (1 + np.exp(0.4)), abs=1e-6)  # the paper's y_ui = sigmoid(...)


def test_mlp_tower_applies_relu_layers_to_the_concatenation():
    model = _fitted(MLP, layers="1")
    m = model.module_
    _set(m.mlp.user.weight[0], [1.0, 0.0])
    _set(m.mlp.item.weight[1], [2.0, 0.0])
    _set(m.mlp.item.weight[2], [-1.0, 0.0])
    _set(m.mlp.layers[0].weight, [[1.0, 0.0, -1.0, 0.0]])  # p_1 - q_1
    _set(m.mlp.layers[0].bias, [0.5])
    _set(m.predict.weight, [[2.0]])
    _set(m.predict.bias, [-0.25])
    # item 1: relu(1 - 2 + 0.5) = 0 -> -0.25 ; item 2: relu(1 + 1 + 0.5) = 2.5 -> 2 * 2.5 - 0.25
    np.testing.assert_allclose(model.score([0, 0], [1, 2]), [-0.25, 4.75], atol=1e-6)
    np.testing.assert_allclose(model.score([0])[0, [1, 2]], [-0.25, 4.75], atol=1e-6)


def test_full_row_scoring_agrees_with_pairs_across_chunks(monkeypatch):
    model = NeuMF(factors=3, layers="8,4", epochs=2, pretrain=False, device="cpu").fit(SPLITS.train)
    users = np.arange(SPLITS.train.n_users)
    full = model.score(users)
    u, i = np.repeat(users, SPLITS.train.n_items), np.tile(np.arange(SPLITS.train.n_items), len(users))
    np.testing.assert_allclose(model.score(u, i).reshape(full.shape), full, rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(neural, "PAIRS_PER_CHUNK", 7)  # chunks of one user, pairs cut mid-user
    np.testing.assert_allclose(model.score(users), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(u, i).reshape(full.shape), full, rtol=1e-5, atol=1e-6)


# ---- NeuMF pre-training ------------------------------------------------------------------------------
def test_fuse_concatenates_alpha_weighted_output_layers():
    torch.manual_seed(0)
    gmf, mlp = NCF(GMFTower(6, 5, 3)), NCF(mlp=MLPTower(6, 5, 2, (4, 2)))
    for p in list(gmf.parameters()) + list(mlp.parameters()):  # non-trivial weights
        torch.nn.init.normal_(p)
    fused = NCF.fuse(gmf, mlp, alpha=0.5)
    h_g, h_m = gmf.predict.weight[0], mlp.predict.weight[0]
    torch.testing.assert_close(fused.predict.weight[0], torch.cat([0.5 * h_g, 0.5 * h_m]))
    torch.testing.assert_close(fused.predict.bias, 0.5 * gmf.predict.bias + 0.5 * mlp.predict.bias)
    users, items = torch.arange(6).repeat(5), torch.arange(5).repeat_interleave(6)
    with torch.no_grad():
        # So the fused model starts as the average of the two pre-trained models' logits.
        torch.testing.assert_close(fused(users, items), 0.5 * gmf(users, items) + 0.5 * mlp(users, items))
        torch.testing.assert_close(fused.score_all(torch.arange(6)), fused(users, items).reshape(5, 6).T)
    # Towers are copies, not shared: fine-tuning NeuMF leaves the pre-trained models alone.
    assert torch.equal(fused.gmf.user.weight, gmf.gmf.user.weight)
    assert fused.gmf.user.weight.data_ptr() != gmf.gmf.user.weight.data_ptr()

    weighted = NCF.fuse(gmf, mlp, alpha=0.8)
    torch.testing.assert_close(weighted.predict.weight[0], torch.cat([0.8 * h_g, 0.2 * h_m]))


def test_pretrained_neumf_reports_its_three_stages():
    events = []
    model = NeuMF(factors=2, layers="4", epochs=2, pretrain=True, device="cpu")
    model.fit(SPLITS.train, val=SPLITS.val, callback=events.append)
    # GMF and MLP are pre-trained together: one event of each per epoch, then NeuMF counts on.
    assert [e["stage"] for e in events] == ["gmf", "mlp", "gmf", "mlp", "neumf", "neumf"]
    assert [e["epoch"] for e in events] == [1, 1, 2, 2, 3, 4] and all(e["epochs"] == 4 for e in events)
    assert all(e["val_seconds"] >= 0 for e in events)
    assert model.item_embeddings().shape == (SPLITS.train.n_items, 4)  # GMF and MLP, 2 each
    assert model.user_embeddings().shape == (SPLITS.train.n_users, 4)


@pytest.mark.parametrize("loss", ["bce", "bpr"])
def test_towers_pretrained_together_equal_separate_fits(loss):
    """Sharing each epoch's negatives changes nothing: both towers end with the weights of a
    GMF and an MLP fitted alone, each stopping at its own epoch."""
    params = dict(factors=3, epochs=16, batch_size=16, learning_rate=0.02, negatives=2, loss=loss, patience=2,
                  random_state=2, device="cpu")
    owner = NeuMF(layers="4", **{**params, "epochs": 1}, pretrain=False).fit(SPLITS.train)
    events = []
    gmf, mlp, epochs = pretrain_towers(owner, SPLITS.train, SPLITS.val, events.append, 28, layers="4", **params)
    alone_gmf = GMF(**params).fit(SPLITS.train, val=SPLITS.val)
    alone_mlp = MLP(layers="4", **params).fit(SPLITS.train, val=SPLITS.val)
    for together, alone in ((gmf, alone_gmf.module_), (mlp, alone_mlp.module_)):
        state = alone.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in together.state_dict().items())
    ran = {stage: sum(e["stage"] == stage for e in events) for stage in ("gmf", "mlp")}
    assert ran == {"gmf": alone_gmf.epochs_trained_, "mlp": alone_mlp.epochs_trained_}
    if loss == "bce":  # these settings stop the two at different epochs (14 and 12)
        assert ran == {"gmf": 14, "mlp": 12}
    assert epochs == max(ran.values())


def test_gmf_and_mlp_expose_their_own_embeddings():
    gmf, mlp = _fitted(GMF), _fitted(MLP, layers="4")
    np.testing.assert_array_equal(gmf.item_embeddings(), gmf.module_.gmf.item.weight.detach().numpy())
    np.testing.assert_array_equal(mlp.user_embeddings(), mlp.module_.mlp.user.weight.detach().numpy())


# ---- parameters ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [("64,32,16", (64, 32, 16)), ("64, 32", (64, 32)), ("8 4", (8, 4)), ((16, 8), (16, 8)), (16, (16,)), ([4], (4,))],
)
def test_layers_parse(value, expected):
    assert parse_layers(value) == expected


@pytest.mark.parametrize("value", ["", "a,b", "0,4", "64,-1", "1.5", [], "1,2,3,4,5,6,7,8,9", "5000", None])
def test_bad_layers_raise_parameter_error(value):
    with pytest.raises(ParameterError, match="layers"):
        parse_layers(value)


def test_layers_from_the_cli_and_directly():
    model = create_model("mlp", layers="32,16,8")  # as `--set layers=32,16,8` passes it
    assert model.get_params()["layers"] == "32,16,8"
    assert create_model("neumf", layers=[16, 8]).get_params()["layers"] == "16,8"
    with pytest.raises(ParameterError, match="layers"):
        create_model("neumf", layers="64,x")
    with pytest.raises(ParameterError, match="layers"):  # __init__ only stores: fit validates
        MLP(layers="0", device="cpu").fit(SPLITS.train)
    with pytest.raises(ParameterError, match="loss"):
        GMF(loss="hinge", device="cpu").fit(SPLITS.train)


def test_param_space_describes_layers_for_the_ui():
    spec = MLP.param_space["layers"].to_json()
    assert spec["kind"] == "choice" and "64,32,16" in spec["choices"]
    assert MLP.default_params()["layers"] in spec["choices"]


# ---- the generated ML-100k folder ------------------------------------------------------------------
def test_short_neumf_fit_beats_popularity_on_ml100k_validation(ml100k_splits):
    from engine.evaluation import evaluate

    train, val = ml100k_splits.train, ml100k_splits.val
    popularity = evaluate(Popularity().fit(train), val)["ndcg@10"]
    model = NeuMF(epochs=3, pretrain=False, device="cpu").fit(train, val=val)
    ndcg = evaluate(model, val)["ndcg@10"]
    assert ndcg > 1.2 * popularity, f"NeuMF {ndcg:.4f} vs popularity {popularity:.4f}"
