"""The fold_in ability: exact where the model allows it, by hand and against the fit's own solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from engine.errors import ParameterError
from engine.models.als import ALS, ConfidenceMatrix, least_squares
from engine.models.fold_in import check_history, weighted_ridge_solve
from engine.models.registry import models_with, model_has
from tests.engine.models.test_contract import SPLITS, make


def hand_als(alpha: float = 0.0, use_ratings: bool = False) -> ALS:
    """Items y0 = (1, 0), y1 = (0, 1), y2 = (2, 0), y3 = (0, 3); λ = 5.

    YᵀY + λI = diag(10, 15). With alpha = 0 the history {0, 1} gives x = (1/10, 1/15), so
    score(2) = 2/10 and score(3) = 3/15.
    """
    model = ALS(regularization=5.0, alpha=alpha, use_ratings=use_ratings)
    model.n_users_, model.n_items_ = 1, 4
    model.seen_ = sp.csr_matrix(np.ones((1, 2), np.float32), shape=(1, 4))
    model.item_factors_ = np.array([[1, 0], [0, 1], [2, 0], [0, 3]], np.float32)
    model.user_factors_ = np.array([[0.1, 1 / 15]], np.float32)
    return model


def test_als_fold_in_by_hand():
    model = hand_als()
    folded = model.fold_in([0, 1])
    np.testing.assert_allclose(folded.state, [0.1, 1 / 15], atol=1e-12)
    np.testing.assert_allclose(model.score_folded(folded, [2, 3]), [0.2, 0.2], rtol=1e-6)
    recs, scores = model.recommend_folded(folded, k=3)
    assert sorted(recs[:2].tolist()) == [2, 3] and recs[2] == -1 and scores[2] == -np.inf  # history out, padded


def test_als_ratings_are_confidences_only_with_use_ratings():
    """alpha = 1, ratings (4, 1) on items (0, 1): c = (5, 2), so x = ((YᵀY + λI + diag(4, 1))⁻¹
    (5 y0 + 2 y1) = (5/14, 2/16). Without `use_ratings` the history is implicit: c = (2, 2)."""
    rated = hand_als(alpha=1.0, use_ratings=True).fold_in([0, 1], ratings=[4.0, 1.0])
    np.testing.assert_allclose(rated.state, [5 / 14, 2 / 16], atol=1e-12)
    implicit = hand_als(alpha=1.0).fold_in([0, 1], ratings=[4.0, 1.0])
    np.testing.assert_allclose(implicit.state, [2 / 11, 2 / 16], atol=1e-12)
    with pytest.raises(ParameterError, match="non-negative"):
        hand_als(alpha=1.0, use_ratings=True).fold_in([0, 1], ratings=[-1.0, 1.0])


@pytest.mark.parametrize("alpha, cg_steps", [(0.0, 3), (5.0, 64)])
def test_als_fold_in_of_a_training_user_is_the_fit_solve(alpha, cg_steps):
    """A training user's history folded in equals the user half-sweep of `fit` against the
    final item factors (solved exactly: Cholesky for alpha = 0, CG run to convergence
    otherwise), to 1e-5."""
    model = make("als", factors=8, alpha=alpha, cg_steps=cg_steps, epochs=5).fit(SPLITS.train)
    side = ConfidenceMatrix(SPLITS.train.matrix(binary=True), alpha, torch.device("cpu"))
    x = torch.from_numpy(model.user_factors_)
    solved = least_squares(side, x, torch.from_numpy(model.item_factors_), model.regularization, cg_steps).numpy()
    for user in range(SPLITS.train.n_users):
        folded = model.fold_in(model.seen_[user].indices)
        np.testing.assert_allclose(folded.state, solved[user], atol=1e-5)
        np.testing.assert_allclose(model.score_folded(folded), solved[user] @ model.item_factors_.T, atol=1e-5)


def test_als_batched_variants_equal_single_fold_ins():
    model = make("als", factors=8, alpha=2.0, epochs=3).fit(SPLITS.train)
    history = np.sort(model.seen_[4].indices)
    masks = np.random.default_rng(0).random((6, len(history))) < 0.6
    targets = np.arange(model.n_items_)
    batched = model.fold_in_scores(history, masks, targets, user=4)
    for keep, row in zip(masks, batched):
        if keep.any():
            np.testing.assert_allclose(row, model.score_folded(model.fold_in(history[keep])), rtol=1e-5, atol=1e-6)


def test_weighted_ridge_solve_matches_the_normal_equations():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(20, 4))
    items, extra = np.array([3, 7, 11]), np.array([0.5, 2.0, 0.0])
    a = y.T @ y + 0.3 * np.eye(4) + sum(e * np.outer(y[i], y[i]) for i, e in zip(items, extra))
    b = sum((1 + e) * y[i] for i, e in zip(items, extra))
    np.testing.assert_allclose(weighted_ridge_solve(y, items, extra, 0.3), np.linalg.solve(a, b), rtol=1e-10)


def test_check_history_names_the_problem():
    assert check_history([3, 1], None, 5)[0].tolist() == [3, 1]
    with pytest.raises(ParameterError, match="empty"):
        check_history([], None, 5)
    with pytest.raises(ParameterError, match="item index 1 is in the history more than once"):
        check_history([1, 2, 1], None, 5)
    with pytest.raises(ParameterError, match="finite"):
        check_history([1, 2], [4.0, float("nan")], 5)


def test_registry_answers_ability_questions_without_a_checkpoint():
    assert model_has("als", "fold_in") and model_has("als", "embeddings")
    assert model_has("popularity", "fold_in") and not model_has("no-such-model", "fold_in")
    assert models_with("attention") == ["acf", "sasrec"]
    assert models_with("feature_view") == ["feature-mlp"]
    with pytest.raises(ParameterError, match="unknown ability 'fold-in'"):
        model_has("als", "fold-in")


# ---- pairwise (BPR-loss) fold-in: BPR and WARP -------------------------------------------------
def brute_pairwise_loss_grad(y, b, positive, lam, x):
    """The BPR fold-in objective and its gradient over explicitly listed pairs."""
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    d = (y[pos][:, None, :] - y[neg][None, :, :]).reshape(-1, y.shape[1])
    margin = d @ x + (b[pos][:, None] - b[neg][None, :]).ravel()
    loss = np.mean(np.log1p(np.exp(-margin))) + lam / 2 * x @ x
    grad = -(d * (1 / (1 + np.exp(margin)))[:, None]).mean(0) + lam * x
    return loss, grad


def test_pairwise_fold_in_minimises_the_bpr_loss():
    from engine.models.fold_in import pairwise_newton

    rng = np.random.default_rng(3)
    y, b = rng.normal(size=(30, 5)), rng.normal(size=30) * 0.3
    positive = np.zeros(30, bool)
    positive[[1, 4, 9, 16]] = True
    x = pairwise_newton(y, b, positive, 0.01)
    loss, grad = brute_pairwise_loss_grad(y, b, positive, 0.01, x)
    assert np.abs(grad).max() < 1e-8
    for _ in range(5):  # and it is a minimum, not a saddle or a maximum
        assert brute_pairwise_loss_grad(y, b, positive, 0.01, x + rng.normal(size=5) * 0.05)[0] > loss
    assert (pairwise_newton(y, b, np.zeros(30, bool), 0.01) == 0).all()  # no positives: no pairs


def test_bpr_fold_in_is_the_pairwise_solve_with_its_own_regularization():
    from engine.models.fold_in import pairwise_newton

    model = make("bpr", factors=6, epochs=3, regularization=0.02).fit(SPLITS.train)
    history = np.sort(model.seen_[4].indices)
    positive = np.zeros(model.n_items_, bool)
    positive[history] = True
    y, b = model.item_factors_.astype(np.float64), model.item_bias_.astype(np.float64)
    expected = pairwise_newton(y, b, positive, 0.02)
    np.testing.assert_allclose(model.fold_in(history).state, expected, atol=1e-10)
    np.testing.assert_allclose(model.score_folded(model.fold_in(history)), y @ expected + b, rtol=1e-5, atol=1e-5)
    # Variants: the full history is its own solve; leaving one out is one Newton step from it,
    # which ranks the items as folding the rest in alone does.
    masks = np.ones((len(history) + 1, len(history)), bool)
    masks[np.arange(len(history)), np.arange(len(history))] = False
    targets = np.arange(model.n_items_)
    batched = model.fold_in_scores(history, masks, targets, user=4)
    np.testing.assert_allclose(batched[-1], y @ expected + b, rtol=1e-6, atol=1e-6)
    for keep, row in zip(masks[:-1], batched[:-1]):
        assert np.corrcoef(row, model.score_folded(model.fold_in(history[keep])))[0, 1] > 0.999


def test_pairwise_sample_spreads_over_the_bias_order():
    from engine.models.fold_in import pairwise_sample

    bias = np.random.default_rng(0).normal(size=500)
    sample = pairwise_sample(bias, 50)
    assert len(sample) == 50 == len(np.unique(sample)) and (np.diff(sample) > 0).all()
    assert {int(np.argmin(bias)), int(np.argmax(bias))} <= set(sample.tolist())  # both ends of the order
    ranks = np.argsort(np.argsort(bias))[sample]  # evenly spaced in the bias order: every ~10th
    assert np.abs(np.diff(np.sort(ranks)) - 499 / 49).max() <= 1
    assert pairwise_sample(bias, 500) is None and pairwise_sample(bias[:40], 50) is None


def test_pairwise_newton_from_a_sample_reaches_the_full_minimiser(monkeypatch):
    """Starting on a sample of the other items changes the cost, not the answer: the steps on
    the sample run first, and the result is the minimiser of the loss over every pair."""
    from engine.models import fold_in
    from engine.models.fold_in import pairwise_newton, pairwise_sample

    rng = np.random.default_rng(4)
    y, b = rng.normal(size=(400, 6)) * 0.7, rng.normal(size=400) * 0.3
    positive = np.zeros(400, bool)
    positive[rng.choice(400, 12, replace=False)] = True
    sample = pairwise_sample(b, 60)
    assert positive[sample].any()  # a sampled positive: its pairs must be left out, not counted
    candidates = []
    terms = fold_in._Pairs.terms

    def recording(self, x, *, hessian=True):
        candidates.append(len(self.yn))
        return terms(self, x, hessian=hessian)

    monkeypatch.setattr(fold_in._Pairs, "terms", recording)
    exact = pairwise_newton(y, b, positive, 0.01)
    assert set(candidates) == {400}
    candidates.clear()
    warm = pairwise_newton(y, b, positive, 0.01, sample=sample)
    assert candidates[0] == 60 and candidates[-1] == 400  # sample first, every item last
    np.testing.assert_allclose(warm, exact, atol=1e-9)
    assert np.abs(brute_pairwise_loss_grad(y, b, positive, 0.01, warm)[1]).max() < 1e-8


def test_bpr_fold_in_starts_on_a_sample_of_a_large_catalogue(monkeypatch):
    """A catalogue above `PAIRWISE_SAMPLE` items: the model's fold-in starts on its sample (drawn
    once per fit) and gives the full pairwise solve."""
    from engine.models import fold_in
    from engine.models.fold_in import pairwise_newton

    model = make("bpr", factors=6, epochs=3, regularization=0.02).fit(SPLITS.train)
    monkeypatch.setattr(fold_in, "PAIRWISE_SAMPLE", model.n_items_ // 3)
    y, b = model._fold_in_basis()
    sample = model._fold_in_sample(b)
    assert len(sample) == model.n_items_ // 3 and model._fold_in_sample(b) is sample
    history = np.sort(model.seen_[4].indices)
    positive = np.zeros(model.n_items_, bool)
    positive[history] = True
    np.testing.assert_allclose(model.fold_in(history).state, pairwise_newton(y, b, positive, 0.02), atol=1e-9)
    model.fit(SPLITS.train)  # a refit draws the sample from its own biases
    assert model._fold_in_sample(model._fold_in_basis()[1]) is not sample


def test_autorec_fold_in_basis_is_cached_per_fit():
    """The codes are encoded once per fit (a fold-in plus its top-k would encode them twice),
    and a refit on other data folds in against the new codes, not the cached ones."""
    model = make("autorec", factors=8, epochs=2).fit(SPLITS.train)
    history = np.sort(model.seen_[2].indices)
    first = model.score_folded(model.fold_in(history))
    assert model._fold_in_basis()[0] is model._fold_in_basis()[0]
    np.testing.assert_allclose(model._fold_in_basis()[0], model.item_embeddings(), rtol=1e-6, atol=1e-6)
    model.epochs = 4  # refit the same instance with other settings
    model.fit(SPLITS.train)
    fresh = make("autorec", factors=8, epochs=4).fit(SPLITS.train)
    np.testing.assert_allclose(model.score_folded(model.fold_in(history)), fresh.score_folded(fresh.fold_in(history)),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(first, fresh.score_folded(fresh.fold_in(history)))


def test_ridge_basis_and_gram_are_cached_per_fit():
    """The float64 item vectors and their Gram matrix are made once per fitted state, and a
    refit (new learned arrays) folds in against the new ones."""
    model = make("als", factors=6, epochs=2, random_state=0).fit(SPLITS.train)
    y, _ = model._fold_in_basis()
    assert model._fold_in_basis()[0] is y and model._fold_in_gram(y) is model._fold_in_gram(y)
    np.testing.assert_allclose(model._fold_in_gram(y), y.T @ y)
    history = np.sort(model.seen_[1].indices)
    model.random_state = 1
    model.fit(SPLITS.train)
    fresh = make("als", factors=6, epochs=2, random_state=1).fit(SPLITS.train)
    np.testing.assert_allclose(model.fold_in(history).state, fresh.fold_in(history).state, atol=1e-10)
    assert not np.allclose(model._fold_in_basis()[0], y)


# ---- Gauss-Newton fold-in of torch modules: GMF, NeuMF, MLP, attention NeuMF ------------------
def neural_objective(model, history, x):
    """The neural fold-in objective, written out: the model's log loss for one user with the
    history as positives (weight 1/n each) and every other item as a negative (total weight
    the model's `negatives`), plus (λ/2)|x|²."""
    from engine.models import fold_in as fi

    fold = fi._NeuralFold(model, None, None)
    items = torch.arange(model.n_items_)
    logits = fold.batch_logits(x[None, :], items)[0]
    positive = torch.zeros(model.n_items_, dtype=torch.bool)
    positive[torch.as_tensor(history)] = True
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    lam = fi.NEURAL_L2
    return (bce(logits[positive], torch.ones(len(history), dtype=torch.float64))
            + model.negatives * bce(logits[~positive], torch.zeros(int((~positive).sum()), dtype=torch.float64))
            + lam / 2 * x @ x)


def test_gmf_fold_in_minimises_its_training_loss_over_every_unseen_item():
    """GMF's logits are linear in the user row, so the objective is convex and the fold-in is its
    minimum: zero gradient, and every nearby point is worse. (The former fold-in drew 200 negatives
    with a total weight of 4, not the model's 8 over every unseen item.)"""
    model = make("gmf", factors=6, epochs=3, negatives=8).fit(SPLITS.train)
    history = np.sort(model.seen_[2].indices)
    x = torch.tensor(model.fold_in(history).state, dtype=torch.float64, requires_grad=True)
    loss = neural_objective(model, history, x)
    (grad,) = torch.autograd.grad(loss, x)
    assert float(grad.abs().max()) < 1e-5
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(5):
            assert neural_objective(model, history, x + torch.from_numpy(rng.normal(size=len(x)) * 0.05)) > loss


def test_neumf_fold_in_never_ends_above_an_earlier_iterate(monkeypatch):
    """A ReLU network's kinks make full Gauss-Newton steps overshoot and cycle; the solve halves
    a step that does not lower the objective and returns the best point, so more iterations never
    give a worse user."""
    from engine.models import fold_in as fi

    model = make("neumf", factors=4, layers="8,4", epochs=2, pretrain=False).fit(SPLITS.train)
    history = np.sort(model.seen_[3].indices)
    losses = []
    for iterations in (1, 2, 3, 4, 6, 8):
        monkeypatch.setattr(fi, "NEURAL_NEWTON_ITERATIONS", iterations)
        x = torch.from_numpy(model.fold_in(history).state)
        losses.append(float(neural_objective(model, history, x)))
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["gmf", "neumf"])
def test_neural_variant_scores_do_not_depend_on_the_targets(name):
    """A variant's scores are the same whichever items are asked for (the negatives no longer
    leave out the targets), and where the solve converges (GMF: convex) a new user's full-history
    variant is the fold-in itself."""
    model = make(name, factors=4, epochs=2, **({"layers": "8,4", "pretrain": False} if name == "neumf" else {}))
    model.fit(SPLITS.train)
    history = np.sort(model.seen_[1].indices)
    masks = np.ones((3, len(history)), bool)
    masks[1, 0] = masks[2, -1] = False
    everything = model.fold_in_scores(history, masks, np.arange(model.n_items_))
    few = np.array([0, 5, model.n_items_ - 1])
    np.testing.assert_allclose(model.fold_in_scores(history, masks, few), everything[:, few], rtol=1e-6, atol=1e-6)
    if name == "gmf":
        np.testing.assert_allclose(everything[0], model.score_folded(model.fold_in(history)), rtol=1e-5, atol=1e-5)
