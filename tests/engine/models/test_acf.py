"""ACF: profiles, masked attention, read-out on images, datasets without images, checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from engine.explain.attention import attention_fidelity
from engine.data import from_frames, leave_last_out, load_dataset
from engine.data.split import Split
from engine.data.visual import generate_visual_synthetic
from engine.errors import ParameterError
from engine.models.acf import ACF, on_embedding_scale, recent_profiles
from engine.models.acf_module import EMBEDDING_STD, PRIOR_WEIGHT, ACFModule, masked_softmax
from engine.models.acf_prior import attention_prior, content_keys
from engine.models.als import ALS
from engine.models.registry import load_model

FAST = {"factors": 8, "attention_dim": 8, "components_dim": 8, "epochs": 4, "batch_size": 256, "device": "cpu"}


@pytest.fixture(scope="module")
def visual(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATA_DIR", str(root))  # the feature cache goes under data_dir()/cache
        folder = generate_visual_synthetic(root / "visual-synthetic", n_users=30, n_items=24, min_interactions=5, max_interactions=14)
        dataset = load_dataset("visual-synthetic", data_dir=root)
        splits = leave_last_out(dataset)
        model = ACF(**FAST, max_profile=6).fit(splits.train, val=splits.val)
    assert (root / "cache").is_dir() and folder.is_dir()
    return dataset, splits, model


def test_recent_profiles_hand_worked():
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b", "a"],
            "item_id": ["1", "2", "3", "2", "4", "5"],
            "timestamp": [10, 20, 30, 40, 5, 30],  # "2" again at 40; "3" and "5" tie at 30
        }
    )
    split = Split.from_dataset(from_frames("toy", frame))
    profile = recent_profiles(split, 3)
    # User a, newest first: 2 (t=40), then the tie at 30 with the later row first (5, then 3).
    np.testing.assert_array_equal(profile, [[1, 4, 2], [3, -1, -1]])
    with pytest.raises(ParameterError):
        recent_profiles(split, 0)


def test_masked_softmax_zeroes_padding_and_empty_rows():
    logits = torch.tensor([[1.0, 2.0, 50.0], [3.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    out = masked_softmax(logits, mask)
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(out[0].numpy(), [e[0] / e.sum(), e[1] / e.sum(), 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[1].sum().item(), 1.0, rtol=1e-6)
    assert (out[2] == 0).all()


def test_attention_values_are_distributions(visual):
    dataset, splits, model = visual
    assert model.has_components_
    for user in range(dataset.n_users):
        att = model.attention(user)
        items = [i for i, _ in att["profile"]]
        alpha = np.array([a for _, a in att["profile"]])
        assert items == [i for i in model.profile_[user] if i >= 0]
        assert (alpha >= 0).all() and alpha.sum() == pytest.approx(1.0, abs=1e-5)
        assert set(att["components"]) == set(items)
        for beta in att["components"].values():
            assert beta.shape == (7, 7) and (beta >= 0).all() and beta.sum() == pytest.approx(1.0, abs=1e-5)
    padded = model.profile_ < 0
    assert padded.any(), "the fixture should have users with fewer than max_profile items"
    assert (model.alpha_[padded] == 0).all() and (model.beta_[padded] == 0).all()


def test_profile_is_the_most_recent_training_items(visual):
    dataset, splits, model = visual
    train = splits.train
    for user in (0, 7, 19):
        mine = train.user_idx == user
        newest = train.item_idx[mine][np.argsort(-train.timestamp[mine], kind="stable")][:6]
        np.testing.assert_array_equal(model.profile_[user][: len(newest)], newest)


def test_checkpoint_round_trip_keeps_attention(visual, tmp_path):
    dataset, splits, model = visual
    model.save(tmp_path / "acf")
    loaded = load_model(tmp_path / "acf")
    users = np.arange(dataset.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    a, b = model.attention(3), loaded.attention(3)
    assert a["profile"] == b["profile"]
    for item, beta in a["components"].items():
        np.testing.assert_array_equal(b["components"][item], beta)


def test_fidelity_on_a_fitted_model(visual):
    dataset, splits, model = visual
    out = attention_fidelity(model, dataset, splits.test)
    assert out["attention.users"] == len(np.unique(splits.test.user_idx))
    assert out["attention.component_lift"] > 0 and 0 <= out["attention.item_auc"] <= 1


def test_images_are_optional_but_asked_features_need_them():
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(6), 4), "item_id": np.tile(np.arange(4), 6)})
    frame["item_id"] = (frame["item_id"] + frame["user_id"]) % 7
    splits = leave_last_out(from_frames("plain", frame))
    with pytest.raises(ParameterError, match="needs item images"):
        ACF(**FAST, features="patches").fit(splits.train)
    model = ACF(**FAST).fit(splits.train)  # "auto": one learned component per item
    assert not model.has_components_
    att = model.attention(0)
    assert att["components"] == {} and sum(a for _, a in att["profile"]) == pytest.approx(1.0, abs=1e-5)


def test_attention_starts_uniform_with_image_terms_on_the_embedding_scale():
    torch.manual_seed(0)
    features = torch.randn(30, 49, 40)  # standardised features, as `standardise` returns
    module = ACFModule(n_users=5, n_items=30, factors=16, attention_dim=8, components_dim=8, features=features, tied=False)
    # The reduced components start with the embeddings' spread, so the image does not decide
    # the attention alone (a Kaiming reduction would give a spread of about 1.4, 14x more).
    spread = module.components().std().item()
    assert 0.05 < spread < 0.2
    assert module.user.weight.std().item() == pytest.approx(0.1, rel=0.2)
    users = torch.arange(5)
    profile = torch.tensor([[0, 1, 2, -1], [3, 4, -1, -1], [5, 6, 7, 8], [9, -1, -1, -1], [10, 11, 12, 13]])
    valid = profile >= 0
    _, alpha, beta = module.user_vectors(users, profile, valid)
    expected = valid.float() / valid.sum(1, keepdim=True)
    torch.testing.assert_close(alpha, expected)
    torch.testing.assert_close(beta, torch.full_like(beta, 1 / 49))


def test_attention_starts_as_the_softmax_of_the_weighted_prior():
    torch.manual_seed(0)
    prior = torch.randn(5, 4)
    module = ACFModule(5, 30, 16, 8, 8, torch.randn(30, 49, 40), tied=True, content=True, prior=prior)
    users = torch.tensor([3, 0, 2])
    profile = torch.tensor([[9, -1, -1, -1], [0, 1, 2, -1], [5, 6, 7, 8]])
    valid = profile >= 0
    _, alpha, _ = module.user_vectors(users, profile, valid)
    # The attention network's output layer starts at 0: only the prior, times its weight, speaks.
    torch.testing.assert_close(alpha, masked_softmax(PRIOR_WEIGHT * prior[users], valid))
    loss = (alpha * torch.arange(4.0)).sum()
    loss.backward()
    assert module.prior_weight.grad is not None and module.prior_weight.grad.abs().item() > 0  # learned


def test_pretraining_starts_from_the_als_factors():
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(40), 6), "item_id": np.random.default_rng(0).integers(0, 30, 240)})
    train = leave_last_out(from_frames("plain", frame)).train
    als = ALS(factors=8, random_state=3).fit(train).item_embeddings()
    still = {"learning_rate": 1e-5, "regularization": 0.0, "embedding_regularization": 0.0, "epochs": 1, "random_state": 3}
    start = ACF(**{**FAST, **still}).fit(train).item_embeddings()  # "auto" without images: v only
    cosine = (start * als).sum(1) / np.linalg.norm(start, axis=1) / np.linalg.norm(als, axis=1)
    assert cosine.min() > 0.99  # a few Adam steps of 1e-5 later: still ALS's directions
    assert np.std(start) == pytest.approx(EMBEDDING_STD, rel=0.05)  # on the embeddings' scale
    fresh = ACF(**{**FAST, **still}, pretrain=False).fit(train).item_embeddings()
    assert np.abs((fresh * als).sum(1) / np.linalg.norm(fresh, axis=1) / np.linalg.norm(als, axis=1)).mean() < 0.6


def test_fitted_attention_starts_from_the_history_consistency_of_als_and_image_keys(visual):
    dataset, splits, _ = visual
    train = splits.train
    still = {"learning_rate": 1e-5, "regularization": 0.0, "embedding_regularization": 0.0, "epochs": 1, "random_state": 4}
    model = ACF(**{**FAST, **still}, max_profile=6).fit(train)
    als = ALS(factors=FAST["factors"], random_state=4).fit(train).item_embeddings()
    keys = [als, content_keys(model._features(train, torch.device("cpu")))]
    prior = attention_prior(train.matrix(binary=True), model.profile_, keys)
    expected = masked_softmax(PRIOR_WEIGHT * torch.from_numpy(prior), torch.from_numpy(model.profile_ >= 0))
    np.testing.assert_allclose(model.alpha_, expected.numpy(), atol=2e-3)
    assert np.abs(model.alpha_ - expected.numpy()).max() < np.abs(expected.numpy() - (model.profile_ >= 0) / (model.profile_ >= 0).sum(1, keepdims=True)).max() / 10
    plain = ACF(**{**FAST, **still}, max_profile=6, consistency=False).fit(train)
    valid = plain.profile_ >= 0
    np.testing.assert_allclose(plain.alpha_, valid / valid.sum(1, keepdims=True), atol=1e-3)  # no prior: uniform


def test_on_embedding_scale_keeps_directions_and_zero():
    factors = np.array([[0.01, -0.02], [0.03, 0.0]])
    out = on_embedding_scale(factors)
    assert np.std(out) == pytest.approx(EMBEDDING_STD)
    np.testing.assert_allclose(out / np.linalg.norm(out, axis=1, keepdims=True), factors / np.linalg.norm(factors, axis=1, keepdims=True), rtol=1e-6)
    assert (on_embedding_scale(np.zeros((2, 2))) == 0).all()


def test_test_evaluation_reports_attention_fidelity_only_where_it_exists(visual):
    from engine.runs.experiment import evaluate_test
    from engine.models.popularity import Popularity

    dataset, splits, model = visual
    metrics = evaluate_test(model, splits)
    assert metrics["attention.component_lift"] == attention_fidelity(model, dataset, splits.test)["attention.component_lift"]
    assert "ndcg@10" in metrics
    plain = evaluate_test(Popularity().fit(splits.train), splits)
    assert not any(k.startswith("attention.") for k in plain)


def test_content_path_gives_beta_gradient_from_the_loss_and_enters_candidates():
    torch.manual_seed(0)
    features = torch.randn(30, 49, 40)
    users = torch.arange(3)
    profile = torch.tensor([[0, 1, 2], [3, 4, -1], [5, -1, -1]])
    grads = {}
    for content in (False, True):
        torch.manual_seed(1)
        module = ACFModule(n_users=3, n_items=30, factors=16, attention_dim=8, components_dim=8, features=features, tied=True, content=content)
        vec, _, _ = module.user_vectors(users, profile, profile >= 0)
        module.item_scores(vec, torch.tensor([10, 11, 12])).sum().backward()
        grads[content] = module.comp_out.weight.grad.abs().sum().item()
    # The item attention's output layer starts at zero, so without the content path the
    # component attention gets no gradient at all at the first step; with it, it does.
    assert grads[False] == 0.0 and grads[True] > 0.0
    # A candidate is v_i + E mean_m(x_im): hand-computed from the module's own pieces.
    items = torch.tensor([4, 7])
    expected = module.item.weight[items] + module.reduce(features[items]).mean(1) @ module.content.weight.T
    torch.testing.assert_close(module.item_vectors(items), expected)
    torch.testing.assert_close(module.item_vectors()[items], expected)


def test_warp_loss_by_hand():
    model = ACF(loss="warp")
    model._unseen = torch.tensor([100, 10])  # candidate negatives of users 0 and 1
    users = torch.tensor([0, 1])
    x_pos = torch.tensor([[2.0, 0.0], [1.0, 5.0]])
    # Draws per positive; a violator is x_uj > x_ui - 1.
    x_neg = torch.tensor(
        [
            [[0.0, 1.5, 3.0], [0.5, -2.0, -3.0]],  # 2nd draw violates (1.5 > 1); 1st draw violates
            [[-1.0, -1.0, 0.5], [0.0, 1.0, 2.0]],  # 3rd draw violates; no violator
        ]
    )
    loss = model._warp(users, x_pos, x_neg)
    harmonic = lambda k: sum(1 / j for j in range(1, k + 1))  # noqa: E731
    expected = torch.tensor(
        [
            [harmonic(100 // 2) * (1 - 2.0 + 1.5), harmonic(100 // 1) * (1 - 0.0 + 0.5)],
            [harmonic(10 // 3) * (1 - 1.0 + 0.5), 0.0],
        ]
    )
    torch.testing.assert_close(loss, expected)


def test_warp_trains_acf_to_rank_its_positives(visual):
    dataset, splits, bpr_model = visual
    # From a random start (no ALS pre-training): what WARP itself learns in 8 epochs.
    model = ACF(**{**FAST, "epochs": 8}, max_profile=6, loss="warp", max_sampled=10, pretrain=False).fit(splits.train)
    seen = splits.train.matrix(binary=True).toarray() > 0  # 30 x 24: a toy matrix
    scores = model.score(np.arange(dataset.n_users))
    # Training AUC: positives above the user's other items, far above chance.
    pos, neg = scores[seen], scores[~seen]
    auc = (pos[:, None] > neg[None, :]).mean()
    assert auc > 0.7
    assert not np.allclose(scores, bpr_model.score(np.arange(dataset.n_users)))


def test_with_content_the_profile_term_is_the_attended_image_content():
    torch.manual_seed(0)
    features = torch.randn(30, 49, 40)
    module = ACFModule(n_users=3, n_items=30, factors=16, attention_dim=8, components_dim=8, features=features, tied=True, content=True)
    for p in module.parameters():  # move the zero-initialised outputs so α and β are not uniform
        torch.nn.init.normal_(p, std=0.3)
    users = torch.arange(3)
    profile = torch.tensor([[0, 1, 2], [3, 4, -1], [5, -1, -1]])
    vec, alpha, beta = module.user_vectors(users, profile, profile >= 0)
    # By hand: u + Σ_l α_l E x̄_l with x̄_l = Σ_m β_lm x_lm; the free item vectors p_l do not enter.
    x = module.reduce(features[profile.clamp_min(0)])
    x_bar = torch.einsum("bpm,bpmc->bpc", beta, x)
    expected = module.user(users) + torch.einsum("bp,bpf->bf", alpha, module.content(x_bar))
    torch.testing.assert_close(vec, expected)
    assert alpha[0].std() > 0 and beta[0, 0].std() > 0


def test_gradients_are_deterministic_with_several_threads():
    # Advanced indexing (``table[idx]``) accumulates its backward in a thread-dependent order;
    # the module looks rows up with F.embedding, whose backward does not.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        module = ACFModule(n_users=200, n_items=1000, factors=32, attention_dim=8, components_dim=8,
                           features=torch.randn(1000, 49, 12), tied=True, content=True)  # fmt: skip
        users = torch.randint(0, 200, (128,))
        profile = torch.randint(0, 1000, (128, 10))
        neg = torch.randint(0, 1000, (128, 8, 20))
        weights = torch.randn(128, 8, 20)

        def grads():
            module.zero_grad()
            vec, _, _ = module.user_vectors(users, profile, profile >= 0, exclude=profile[:, :8])
            (module.item_scores(vec, neg) * weights).sum().backward()
            return [p.grad.clone() for p in module.parameters() if p.grad is not None]

        first = grads()
        for _ in range(3):
            for a, b in zip(first, grads()):
                assert torch.equal(a, b)
    finally:
        torch.set_num_threads(threads)
