"""What the dashboard's Explain page shows, as plain data: one (user, item) pair explained by SHAP
and LIME with their agreement and faithfulness, and the global SHAP summary as frames.

A `PairExplainer` is not thread-safe (LIME re-seeds its shared generator on each call): a caller
that shares one between threads serialises the calls (the dashboard holds a lock).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.explain.shap_lime import ITEM_EMBEDDING, USER_EMBEDDING, PairExplainer, agreement, deletion_ratio


def pair_report(explainer: PairExplainer, dataset, user_idx: int, item_idx: int) -> dict:
    """SHAP and LIME of one pair, their agreement and each one's deletion ratio on this pair.

    Returns ``{"shap": Explanation dict, "lime": ..., "agreement": {"spearman",
    "top3_overlap"}, "deletion": {"shap", "lime"}}``; the embedding features' values read as
    the raw user id and the item's title (`dataset` gives both).
    """
    shap_exp, lime_exp = explainer.shap(user_idx, item_idx), explainer.lime(user_idx, item_idx)
    deletion = {}
    for e in (shap_exp, lime_exp):
        top, rand = explainer.deletion_changes([user_idx], [item_idx], [e.vector(explainer.features)])
        deletion[e.method] = deletion_ratio(top, rand)
    out = {"agreement": agreement(shap_exp, lime_exp), "deletion": deletion}
    names = {USER_EMBEDDING: f"user {dataset.user_ids[user_idx]}", ITEM_EMBEDDING: dataset.title(item_idx)}
    for e in (shap_exp, lime_exp):
        e.values.update(names)
        out[e.method] = e.to_dict()
    return out


def global_report(explainer: PairExplainer, users: np.ndarray, items: np.ndarray, progress=None) -> dict:
    """SHAP values of the pairs ``(users[i], items[i])``: ``{"long": frame (pair, feature, shap,
    value), "mean_abs": frame (feature, mean_abs), "method", "seconds", "max_additivity_error",
    "pairs"}``; `progress(done, total)` as `PairExplainer.global_shap` calls it."""
    result = explainer.global_shap(users, items, progress=progress)
    mean_abs = result.mean_abs
    return {
        "long": result.long_frame(),
        "mean_abs": pd.DataFrame({"feature": mean_abs.index, "mean_abs": mean_abs.to_numpy()}),
        "method": result.method,
        "seconds": result.seconds,
        "max_additivity_error": result.max_additivity_error,
        "pairs": len(users),
    }
