"""The synthetic visual catalogue (determinism, ground truth) and the ``visual:DIR`` loader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.data import load_dataset
from engine.data.visual import CELL, COLOURS, GRID, MOTIFS, SHAPES, generate_visual_synthetic, load_image
from engine.errors import DatasetError

SMALL = {"n_users": 30, "n_items": 24, "min_interactions": 5, "max_interactions": 10}


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return generate_visual_synthetic(root / "visual-synthetic", **SMALL)


def test_generation_is_deterministic(small_dir, tmp_path):
    again = generate_visual_synthetic(tmp_path / "again", **SMALL)
    for name in ("interactions.csv", "items.csv", "meta.json", "images/1.png", "images/24.png"):
        assert (again / name).read_bytes() == (small_dir / name).read_bytes(), name
    other = generate_visual_synthetic(tmp_path / "other", **SMALL, random_state=1)
    assert (other / "interactions.csv").read_bytes() != (small_dir / "interactions.csv").read_bytes()


def test_spec_loads_the_generated_folder_with_ground_truth(small_dir):
    dataset = load_dataset("visual-synthetic", data_dir=small_dir.parent)
    assert dataset.n_items == SMALL["n_items"] and dataset.n_users == SMALL["n_users"]
    counts = dataset.interactions.groupby("user_idx").size()
    assert counts.min() >= SMALL["min_interactions"] and counts.max() <= SMALL["max_interactions"]
    extras = dataset.extras
    assert extras["motif_names"] == list(MOTIFS) and len(MOTIFS) == 36
    assert extras["motif_cells"].shape == (dataset.n_items, 36, GRID * GRID)
    assert extras["user_motifs"].shape == (dataset.n_users, 3)
    liked = (extras["user_motifs"] >= 0).sum(1)
    assert ((liked >= 2) & (liked <= 3)).all()
    assert extras["image_problems"]["count"] == 0
    # Titles name exactly the motifs whose cells the ground truth records.
    for i in range(dataset.n_items):
        shown = {MOTIFS[m] for m in np.flatnonzero(extras["motif_cells"][i].any(1))}
        assert set(dataset.title(i).split(", ")) == shown
        assert 2 <= len(shown) <= 4


def test_motif_cells_contain_the_motif_colour(small_dir):
    dataset = load_dataset(f"visual-synthetic:{small_dir}")
    cells = dataset.extras["motif_cells"]
    checked = 0
    for i in range(dataset.n_items):
        pixels = np.asarray(load_image(dataset, i), np.float32)
        grid = pixels.reshape(GRID, CELL, GRID, CELL, 3).transpose(0, 2, 1, 3, 4).reshape(GRID * GRID, CELL * CELL, 3)
        for m in np.flatnonzero(cells[i].any(1)):
            colour = np.array(COLOURS[MOTIFS[m].split()[0]], np.float32)
            near = (np.linalg.norm(grid - colour, axis=-1) < 40).sum(1)  # pixels of about that colour
            covered = cells[i, m]
            # 10% of a cell is 102 pixels; the colour jitters by at most 12 per channel.
            assert (near[covered] >= 0.1 * CELL * CELL).all(), (i, MOTIFS[m])
            checked += covered.sum()
    assert checked > 3 * dataset.n_items


def test_motif_names_cover_every_colour_and_shape():
    assert MOTIFS[0] == "red circle" and len(set(MOTIFS)) == len(COLOURS) * len(SHAPES)


def test_old_generator_version_is_regenerated(tmp_path):
    folder = generate_visual_synthetic(tmp_path / "vs", **SMALL)
    meta = json.loads((folder / "meta.json").read_text())
    meta["version"] = 0
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "interactions.csv").write_text("user_id,item_id,timestamp\n1,1,1\n")
    dataset = load_dataset(f"visual-synthetic:{folder}")
    assert dataset.n_users == SMALL["n_users"]


def test_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="meta.json"):
        load_dataset(f"visual-synthetic:{tmp_path / 'mine'}")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ---- visual:DIR ----------------------------------------------------------------------------
def _visual_folder(root):
    (root / "images").mkdir(parents=True)
    rows = []
    for u, items in {"u1": "abcd", "u2": "bce", "u3": "acde"}.items():
        rows += [(u, item, t) for t, item in enumerate(items)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(root / "interactions.csv", index=False)
    for item, colour in (("a", "red"), ("b", "green"), ("c", "blue")):
        Image.new("RGB", (100, 60), colour).save(root / "images" / f"{item}.{'jpg' if item == 'c' else 'png'}")
    (root / "images" / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")  # corrupt
    # "e" has no image at all.
    pd.DataFrame({"item_id": ["a", "b"], "title": ["Red", "Green"]}).to_csv(root / "items.csv", index=False)
    return root


def test_visual_loader_drops_and_reports_bad_images(tmp_path):
    folder = _visual_folder(tmp_path / "vis")
    with pytest.warns(UserWarning, match=r"dropped 2 item\(s\).*missing: e.*unreadable: d"):
        dataset = load_dataset(f"visual:{folder}")
    assert sorted(dataset.item_ids) == ["a", "b", "c"]
    assert dataset.extras["image_problems"] == {"count": 2, "missing": ["e"], "unreadable": ["d"]}
    assert dataset.n_interactions == 3 + 2 + 2  # u1: abc, u2: bc, u3: ac
    assert dataset.images_dir == str(folder / "images")
    assert dataset.title(dataset.item_index("a")) == "Red" and dataset.title(dataset.item_index("c")) == "c"
    image = load_image(dataset, dataset.item_index("c"))
    assert image.size == (224, 224) and image.mode == "RGB"
    assert not dataset.has_ratings


def test_visual_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"visual:{tmp_path / 'nowhere'}")
    folder = _visual_folder(tmp_path / "vis")
    (folder / "interactions.csv").write_text("user,thing\n1,2\n")
    with pytest.raises(DatasetError, match="user_id"):
        load_dataset(f"visual:{folder}")
    (folder / "interactions.csv").write_text("user_id,item_id\nu1,d\nu2,e\n")
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="no item .* readable image"):
        load_dataset(f"visual:{folder}")
    empty = tmp_path / "noimages"
    empty.mkdir()
    (empty / "interactions.csv").write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DatasetError, match="images/"):
        load_dataset(f"visual:{empty}")
