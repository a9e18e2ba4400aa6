"""`FeatureMLP`: NCF's MLP tower over user and item embeddings concatenated with side features.

The side features (demographics, genres, year; or features derived from the train split) come
from `engine.data.features.FeatureSpace`, which also gives explainers a named tabular view:
`FeatureMLP.feature_frame` and `FeatureMLP.predict_frame`.

References
----------
.. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017, Sec. 3.3
   (the MLP tower over concatenated embeddings).
.. [2] Covington, Adams & Sargin, "Deep Neural Networks for YouTube Recommendations", RecSys
   2016 (side features - demographics, normalised continuous values - concatenated with the
   embeddings at the input of a ReLU tower).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from engine.data.features import MODES, FeatureSpace
from engine.models import params as P
from engine.models.item_side import RowScorer
from engine.models.ncf_modules import _embedding
from engine.models.neural import EVAL_EVERY, LAYERS, PATIENCE, NeuralRecommender, parse_layers
from engine.models.params import Param
from engine.models.training import bce_loss, pointwise_examples, train_module


class FeatureMLPModule(RowScorer):
    """``h · z_L + b`` with ``z_0 = [p_u; x_u; q_i; x_i]`` and ReLU layers of sizes `layers`.

    ``x_u`` and ``x_i`` are the encoded side features of the user and the item, held as
    (non-persistent) buffers: the recommender rebuilds them from its saved feature tables.
    """

    def __init__(self, n_users, n_items, factors, layers, user_x: torch.Tensor, item_x: torch.Tensor):
        super().__init__()
        self.user = _embedding(n_users, factors)
        self.item = _embedding(n_items, factors)
        self.register_buffer("user_x", user_x, persistent=False)
        self.register_buffer("item_x", item_x, persistent=False)
        self.user_width = factors + user_x.shape[1]
        sizes = (self.user_width + factors + item_x.shape[1], *layers)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.predict = nn.Linear(sizes[-1], 1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.forward_features(users, items, self.user_x[users], self.item_x[items])

    def forward_features(self, users, items, user_x, item_x) -> torch.Tensor:
        """Logits with the side features given explicitly (for perturbed feature frames)."""
        x = torch.cat([self.user(users), user_x, self.item(items), item_x], dim=-1)
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.predict(x).squeeze(-1)

    def _item_side(self) -> tuple[torch.Tensor]:
        """Every item's share of the first layer, ``W_i [q_i; x_i] + b``: the first layer is
        linear in the concatenation, so full rows compute it once per item (and once per user)
        and sum by broadcasting, as `MLPTower.item_part`."""
        first = self.layers[0]
        item_in = torch.cat([self.item.weight, self.item_x], dim=-1)
        return (item_in @ first.weight[:, self.user_width :].T + first.bias,)

    def score_rows(self, users: torch.Tensor, item_side: tuple[torch.Tensor]) -> torch.Tensor:
        """Logits of `users` for every item, (len(users), n_items)."""
        first, *rest = self.layers
        user_in = torch.cat([self.user(users), self.user_x[users]], dim=-1)
        x = torch.relu_((user_in @ first.weight[:, : self.user_width].T)[:, None, :] + item_side[0][None, :, :])
        for layer in rest:
            x = torch.relu_(layer(x))
        return self.predict(x).squeeze(-1)


class FeatureMLP(NeuralRecommender):
    """A feature-rich MLP: user and item embeddings plus side features, through a ReLU tower.

    ``sigmoid(h · z_L + b)``, ``z_0 = [p_u; x_u; q_i; x_i]``, trained as NCF's MLP (log loss
    over each positive and `negatives` sampled unseen items). On ML-100k ``x_u`` is gender, age
    bucket and occupation (one-hot) and ``x_i`` the 19 genres (multi-hot) and the standardised
    release year; on datasets without demographics ``x_u`` is derived from the train split
    (activity, mean rating, genre affinities) and ``x_i`` adds train popularity. See
    `engine.data.features` for the exact features and their encoding.

    Parameters
    ----------
    factors : size of the user and of the item embedding.
    layers : hidden sizes, e.g. ``"64,32,16"``.
    features : ``"auto"`` (demographics when the dataset has them, else derived),
        ``"demographics"``, ``"derived"`` or ``"all"``.
    learning_rate, regularization, epochs, batch_size, negatives : as `engine.models.ncf.MLP`.
    eval_every, patience : early stopping on validation NDCG@10 when `fit` gets `val`.
    random_state : seed; device : "auto", "cpu" or "cuda".

    Notes
    -----
    `feature_frame` / `predict_frame` give explainers (SHAP, LIME) a table with one column per
    semantic feature plus the ``user_idx`` / ``item_idx`` columns the embeddings hang on;
    ``predict_frame(feature_frame(u, i))`` equals ``score(u, i)``.

    References
    ----------
    .. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017, Sec. 3.3.
    .. [2] Covington, Adams & Sargin, "Deep Neural Networks for YouTube Recommendations",
       RecSys 2016.
    """

    name = "feature-mlp"
    has_embeddings = True
    has_feature_view = True
    description = "MLP over user/item embeddings and side features (demographics, genres, year)"
    param_space = {
        "factors": P.FACTORS.with_default(32),
        "layers": LAYERS.with_default("64,32,16"),
        "features": Param("choice", choices=MODES, help="side features: demographics, derived from train, or all", default="auto"),
        "learning_rate": P.LEARNING_RATE.with_default(0.001),
        "regularization": Param("float", 0.0, 1.0, help="L2 weight decay of every parameter", default=0.0),
        "epochs": P.EPOCHS.with_default(50),
        "batch_size": P.BATCH_SIZE.with_default(1024),
        "negatives": P.NEGATIVES.with_default(4),
        "eval_every": EVAL_EVERY.with_default(1),
        "patience": PATIENCE.with_default(5),
        "random_state": P.RANDOM_STATE.with_default(0),
        "device": P.DEVICE.with_default("auto"),
    }

    # ---- training ------------------------------------------------------------------------------
    def _fit(self, train, val, callback):
        space = FeatureSpace.from_split(train, self.features)
        self.feature_user_values_, self.feature_item_values_, self.feature_spec_ = space.to_state()
        self._space = space
        super()._fit(train, val, callback)

    def _build_module(self) -> FeatureMLPModule:
        space = self.feature_space
        return FeatureMLPModule(
            self.n_users_, self.n_items_, self.factors, parse_layers(self.layers),
            torch.from_numpy(space.user_matrix), torch.from_numpy(space.item_matrix),
        )  # fmt: skip

    def _train(self, train, val, callback):
        settings = self.train_settings(weight_decay=self.regularization)
        examples = pointwise_examples(train, self.negatives)
        return train_module(self, self.module_, examples, _pointwise_loss, settings, val=val, callback=callback)

    # ---- features ------------------------------------------------------------------------------
    @property
    def feature_space(self) -> FeatureSpace:
        """The fitted (or loaded) `FeatureSpace`."""
        self._check_fitted()
        space = getattr(self, "_space", None)
        if space is None or space.user_values is not self.feature_user_values_:
            space = FeatureSpace.from_state(self.feature_user_values_, self.feature_item_values_, self.feature_spec_)
            self._space = space
        return space

    def feature_frame(self, user_idx, item_idx) -> pd.DataFrame:
        """One row per (user, item) pair: ``user_idx``, ``item_idx`` and one column per semantic
        feature value, human-readable (see `engine.data.features`)."""
        self._check_fitted()
        users = self._indices(user_idx, self.n_users_, "user")
        items = self._indices(item_idx, self.n_items_, "item")
        return self.feature_space.frame(users, items)

    def predict_frame(self, df: pd.DataFrame) -> np.ndarray:
        """Scores (logits, as `score`) of the rows of a feature frame, perturbed or not.

        Categorical columns may hold their strings or their integer codes; a value outside a
        feature's levels, a missing column or an index out of range raises `ParameterError`.
        """
        self._check_fitted()
        users, items, user_x, item_x = self.feature_space.encode(df)
        users = self._indices(users, self.n_users_, "user")
        items = self._indices(items, self.n_items_, "item")
        module, device = self.module_, self.torch_device
        module.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(users), 1 << 14):
                part = slice(s, s + (1 << 14))
                out.append(
                    module.forward_features(
                        *(torch.from_numpy(np.ascontiguousarray(a[part])).to(device) for a in (users, items, user_x, item_x))
                    ).float().cpu().numpy()
                )  # fmt: skip
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    # ---- embeddings ----------------------------------------------------------------------------
    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self._numpy(self.module_.item.weight)

    def user_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self._numpy(self.module_.user.weight)


def _pointwise_loss(module, users, items, labels):
    return bce_loss(module(users, items), labels)
