"""Attention fidelity metrics (hand-worked values) and the overlay renderer."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.explain.attention import (
    attention_fidelity,
    attention_overlay,
    component_lift,
    has_ground_truth,
    item_auc,
    user_attention,
    users_tested_first,
)
from engine.data import from_frames
from engine.data.split import Split
from engine.errors import EngineError


def test_component_lift_hand_worked():
    covered = np.zeros((2, 49), bool)
    covered[0, :7] = True  # 7 of 49 cells: a share of 1/7
    covered[1, [3, 10]] = True  # 2 cells
    uniform = np.full((2, 49), 1 / 49)
    assert component_lift(uniform, covered) == pytest.approx(1.0)
    on_truth = np.zeros((2, 49))
    on_truth[0, :7] = 1 / 7
    on_truth[1, 3] = 1.0
    assert component_lift(on_truth, covered) == pytest.approx((7.0 + 49 / 2) / 2)
    half = np.full((1, 49), 0.5 / 42)
    half[0, :7] = 0.5 / 7  # half the mass on the 7 true cells
    assert component_lift(half, covered[:1]) == pytest.approx(3.5)
    assert np.isnan(component_lift(uniform, np.zeros((2, 49), bool)))


def test_item_auc_hand_worked():
    relevant = np.array([[True, False, True, False], [True, True, False, False]])
    valid = np.array([[True, True, True, True], [True, True, True, False]])
    assert item_auc(np.full((2, 4), 0.25), relevant, valid) == pytest.approx(0.5)
    # Row 0: positives 0.4, 0.1 vs negatives 0.3, 0.2 -> pairs won: 2 + 0 of 4. Row 1: 0.5, 0.2
    # vs 0.2 (the padded 0.1 is ignored) -> 1 + 0.5 (tie) of 2.
    alpha = np.array([[0.4, 0.3, 0.1, 0.2], [0.5, 0.2, 0.2, 0.1]])
    assert item_auc(alpha, relevant, valid) == pytest.approx((2 / 4 + 1.5 / 2) / 2)
    assert item_auc(relevant.astype(float), relevant, valid) == pytest.approx(1.0)
    assert np.isnan(item_auc(alpha, np.ones((2, 4), bool)))


class _FixedAttention:
    """A stand-in model: attention on a fixed 4-item profile, uniform or on the truth."""

    name = "fixed"

    def __init__(self, dataset, mode):
        self.dataset, self.mode = dataset, mode

    def attention(self, user_idx):
        cells = self.dataset.extras["motif_cells"]
        liked = self.dataset.extras["user_motifs"][user_idx]
        liked = liked[liked >= 0]
        items = [0, 1, 2, 3]
        truth = cells[items][:, liked].any(1)  # (4, 49)
        relevant = truth.any(1)
        if self.mode == "uniform":
            alpha = np.full(4, 0.25)
            betas = [np.full((7, 7), 1 / 49) for _ in items]
        else:
            alpha = np.where(relevant, 1.0, 0.0) / max(1, relevant.sum())
            betas = [(t / t.sum() if t.any() else np.full(49, 1 / 49)).reshape(7, 7) for t in truth]
        return {"profile": list(zip(items, alpha)), "components": dict(zip(items, betas))}


def _ground_truth_dataset():
    rng = np.random.default_rng(0)
    frame = {"user_id": np.repeat(["1", "2", "3"], 4), "item_id": np.tile(["1", "2", "3", "4"], 3)}
    import pandas as pd

    dataset = from_frames("toy", pd.DataFrame(frame))
    cells = np.zeros((4, 36, 49), bool)
    cells[0, 5, [0, 1, 7, 8]] = True  # item 0 shows motif 5, item 1 motif 6, item 2 motif 7
    cells[1, 6, [20, 21]] = True
    cells[2, 7, [40, 41, 47]] = True
    cells[3, 9, rng.choice(49, 3, replace=False)] = True
    dataset.extras.update(motif_cells=cells, user_motifs=np.array([[5, 6, -1], [7, 8, -1], [5, 7, 9]], np.int16))
    return dataset


def test_fidelity_is_one_for_uniform_and_higher_on_the_truth():
    dataset = _ground_truth_dataset()
    test = Split.from_dataset(dataset)
    assert has_ground_truth(dataset)
    uniform = attention_fidelity(_FixedAttention(dataset, "uniform"), dataset, test)
    assert uniform["attention.component_lift"] == pytest.approx(1.0)
    assert uniform["attention.item_auc"] == pytest.approx(0.5)
    assert uniform["attention.users"] == 3
    oracle = attention_fidelity(_FixedAttention(dataset, "oracle"), dataset, test)
    assert oracle["attention.item_auc"] == pytest.approx(1.0)
    # Every (user, relevant item) pair puts all beta on its c true cells: lift 49 / c.
    expected = np.mean([49 / 4, 49 / 2, 49 / 3, 49 / 4, 49 / 3, 49 / 3])
    assert oracle["attention.component_lift"] == pytest.approx(expected)


def test_fidelity_needs_ground_truth_and_attention():
    dataset = _ground_truth_dataset()
    test = Split.from_dataset(dataset)
    with pytest.raises(EngineError, match="no attention"):
        attention_fidelity(object(), dataset, test)
    dataset.extras.clear()
    with pytest.raises(EngineError, match="ground truth"):
        attention_fidelity(_FixedAttention(dataset, "uniform"), dataset, test)


def test_overlay_size_mode_and_heat():
    image = Image.new("RGB", (140, 70), (128, 128, 128))
    beta = np.zeros((7, 7))
    beta[0, 0] = 1.0  # all attention top-left
    out = attention_overlay(image, beta)
    assert out.size == (140, 70) and out.mode == "RGB"
    pixels = np.asarray(out, np.float32)
    # Top-left is blended with the bright end of the colour map, bottom-right with the dark end.
    assert pixels[0, 0].sum() > pixels[-1, -1].sum() + 150
    np.testing.assert_allclose(pixels[-1, -1], np.round(0.5 * 128 + 0.5 * np.array([0, 0, 4])), atol=1)
    flat = np.asarray(attention_overlay(image.convert("L"), np.full(49, 1 / 49), opacity=0.0))
    assert flat.shape == (70, 140, 3) and (flat == 128).all()
    with pytest.raises(EngineError, match="square"):
        attention_overlay(image, np.ones(10))


def test_user_attention_reads_one_user_against_the_truth():
    dataset = _ground_truth_dataset()
    dataset.extras["motif_names"] = [f"motif {m}" for m in range(36)]
    dataset.extras["item_motifs"] = np.array([[5, -1], [6, -1], [7, -1], [9, -1]], np.int16)
    recommendations = (np.array([2, 3]), np.array([0.9, 0.1], np.float32))
    out = user_attention(_FixedAttention(dataset, "oracle"), dataset, 0, recommendations)
    # User 0 likes motifs 5 and 6: items 0 and 1 show them, and the oracle puts alpha there.
    assert out["liked_motifs"] == ["motif 5", "motif 6"]
    assert [p["item"] for p in out["profile"]] == [0, 1, 2, 3]
    assert [p["liked"] for p in out["profile"]] == [True, True, False, False]
    assert [p["alpha"] for p in out["profile"]] == pytest.approx([0.5, 0.5, 0.0, 0.0])
    assert out["profile"][0]["truth"].shape == (7, 7) and out["profile"][0]["truth"].sum() == 4
    assert [(r["item"], r["title"]) for r in out["recommendations"]] == [(2, dataset.title(2)), (3, dataset.title(3))]
    assert [r["score"] for r in out["recommendations"]] == pytest.approx([0.9, 0.1])
    assert [(r["motifs"], r["liked"]) for r in out["recommendations"]] == [(["motif 7"], False), (["motif 9"], False)]
    assert out["fidelity"]["item_auc"] == pytest.approx(1.0)
    assert out["fidelity"]["component_lift"] == pytest.approx(np.mean([49 / 4, 49 / 2]))


def test_user_attention_without_ground_truth_has_no_fidelity():
    dataset = _ground_truth_dataset()
    model = _FixedAttention(dataset, "uniform")
    model.dataset = _ground_truth_dataset()  # the model keeps its truth; the dataset shown has none
    dataset.extras.clear()
    out = user_attention(model, dataset, 1, (np.array([0]), np.array([1.0])))
    assert out["fidelity"] is None and out["liked_motifs"] is None
    assert [p["truth"] for p in out["profile"]] == [None] * 4
    assert [p["liked"] for p in out["profile"]] == [None] * 4


def test_users_tested_first_puts_users_with_a_test_item_first():
    dataset = _ground_truth_dataset()  # users "1", "2", "3"
    none = np.zeros(0)
    test = Split(dataset, np.array([2, 2]), np.array([0, 1]), none, none)
    assert users_tested_first(dataset, test) == ["3", "1", "2"]
