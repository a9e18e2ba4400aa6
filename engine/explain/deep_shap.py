"""Deep SHAP (DeepLIFT) on `FeatureMLP`'s torch tower: fast SHAP values for many pairs.

The tower sees ``z_0 = [p_u; x_u; q_i; x_i]`` (user embedding, encoded user features, item
embedding, encoded item features). `shap.DeepExplainer` attributes the logit to every column of
``z_0`` against the background pairs' ``z_0``; a feature group's value is the sum over its
columns (DeepLIFT's contributions add up to the output minus the background mean, so sums of
columns keep that property). Used by `PairExplainer.global_shap`; the local explanations use
Kernel SHAP, which gives exact Shapley values.

References
----------
.. [1] Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017
   (Deep SHAP).
.. [2] Shrikumar, Greenside & Kundaje, "Learning Important Features Through Propagating
   Activation Differences", ICML 2017.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from engine.errors import ParameterError


def supports(model) -> bool:
    """Whether `model` has the tower this module explains (a fitted `FeatureMLP`)."""
    module = getattr(model, "module_", None)
    return (
        module is not None
        and model.has_feature_view
        and hasattr(module, "forward_features")
        and hasattr(module, "layers")
    )


def _tower(module) -> nn.Module:
    """The layers after ``z_0`` as modules DeepExplainer can hook (it needs `nn.ReLU` modules,
    not functional ReLUs). Shares the weights; copies nothing."""
    parts = []
    for layer in module.layers:
        parts += [layer, nn.ReLU()]
    return nn.Sequential(*parts, module.predict).eval()


def _inputs(model, frame: pd.DataFrame) -> torch.Tensor:
    users, items, user_x, item_x = model.feature_space.encode(frame)
    module = model.module_
    device = next(module.parameters()).device
    with torch.no_grad():
        z = torch.cat(
            [
                module.user(torch.from_numpy(users).to(device)),
                torch.from_numpy(user_x).to(device),
                module.item(torch.from_numpy(items).to(device)),
                torch.from_numpy(item_x).to(device),
            ],
            dim=-1,
        )
    return z.float()


def _group_columns(model, groups) -> list[np.ndarray]:
    """For each feature group, its columns in ``z_0``."""
    space, factors = model.feature_space, model.module_.user.weight.shape[1]
    spans, col = {}, 0
    spans["user_idx"] = np.arange(col, col + factors)
    col += factors
    for side in ("user", "item"):
        if side == "item":
            spans["item_idx"] = np.arange(col, col + factors)
            col += factors
        for f in space.side(side):
            spans[f.name] = np.arange(col, col + f.width)
            col += f.width
    out = []
    for g in groups:
        key = g.columns[0] if g.columns[0] in ("user_idx", "item_idx") else g.name
        if key not in spans:
            raise ParameterError(f"feature group {g.name!r} has no place in the model's input")
        out.append(spans[key])
    return out


def deep_shap(explainer, frame: pd.DataFrame, *, progress=None, chunk: int = 25, background_rows: int = 64):
    """``(values (pairs, groups), base_values, predictions)`` of the frame's pairs.

    The background is the explainer's k-means summary with each medoid repeated about as often
    as its weight says, so the base value is close to the weighted mean Kernel SHAP uses.
    """
    import shap  # heavy: imported when an explanation runs

    model = explainer.model
    if not supports(model):
        raise ParameterError(f"deep SHAP needs a model whose feature view is an MLP tower; {getattr(model, 'name', type(model).__name__)!r} has none")
    tower = _tower(model.module_)
    # shap's torch DeepExplainer back-propagates once per (pair, background row), so the
    # background is the summary with each medoid repeated in proportion to its weight
    # (`background_rows` rows in all) rather than every background pair.
    counts = np.maximum(np.rint(explainer.summary_weights * background_rows), 1).astype(np.int64)
    background = _inputs(model, explainer.summary.loc[np.repeat(np.arange(len(counts)), counts)])
    z = _inputs(model, frame)
    columns = _group_columns(model, explainer.groups)
    n = len(frame)
    values = np.zeros((n, len(columns)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deep = shap.DeepExplainer(tower, background)
        for start in range(0, n, chunk):
            part = z[start : start + chunk]
            phi = np.asarray(deep.shap_values(part, check_additivity=False), np.float64).reshape(len(part), z.shape[1])
            values[start : start + len(part)] = np.stack([phi[:, c].sum(axis=1) for c in columns], axis=1)
            if progress is not None:
                progress(min(start + chunk, n), n)
    base = float(np.asarray(deep.expected_value, np.float64).reshape(-1)[0])
    with torch.no_grad():
        pred = tower(z).reshape(-1).double().cpu().numpy()
    return values, np.full(n, base), pred
