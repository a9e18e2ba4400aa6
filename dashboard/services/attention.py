"""Visual attention page: ACF's attention read-out drawn on item images, and its fidelity."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from engine.explain import attention as attention_lib
from engine.explore import query
from engine.data.visual import load_image

from dashboard.services import checkpoints, datasets, errors


# ---- visual attention ----------------------------------------------------------------------------
# ACF's attention read-out (alpha over the profile, beta over each image's 7x7 cells), drawn on
# the item images server-side, and checked against the generator's truth on visual-synthetic.


ATTENTION_VIEWS = {"raw": "Image", "overlay": "Attention overlay", "truth": "Ground-truth motif cells"}


def has_attention_truth(spec: str) -> bool:
    return attention_lib.has_ground_truth(datasets.get_dataset(spec))


def attention_users(checkpoint: str, spec: str) -> list[str]:
    """Raw ids of the users with a test item in the checkpoint's split (the ones the fidelity
    figures average over), followed by the rest."""
    test = checkpoints.get_splits(checkpoint, spec).test
    return attention_lib.users_tested_first(datasets.get_dataset(spec), test)


@st.cache_data(max_entries=4, show_spinner="Scoring attention against the ground truth...")
def attention_fidelity(checkpoint: str, spec: str) -> dict:
    """`engine.explain.attention.attention_fidelity` over the test users of `spec` (cached per run)."""
    with errors.friendly_errors():
        test = checkpoints.get_splits(checkpoint, spec).test
        return attention_lib.attention_fidelity(checkpoints.get_model(checkpoint, spec), datasets.get_dataset(spec), test)


def user_attention(checkpoint: str, spec: str, user_idx: int, k: int = 10) -> dict:
    """One user's attention and top-`k`, ready to draw (`engine.explain.attention.user_attention`)."""
    ds = datasets.get_dataset(spec)
    model = checkpoints.get_model(checkpoint, spec)
    with errors.friendly_errors():
        recommendations = query.recommend_for(model, ds, user_idx, k)
        return attention_lib.user_attention(model, ds, int(user_idx), recommendations)


def attention_image(spec: str, item_idx: int, grid=None, *, size: int = 224) -> Image.Image:
    """An item's image, with `grid` (a 7x7 attention or truth map) drawn over it when given."""
    with errors.friendly_errors():
        image = load_image(datasets.get_dataset(spec), item_idx, size)
        return image if grid is None else attention_lib.attention_overlay(image, np.asarray(grid, np.float32))
