"""Projections: PCA against a hand-rolled SVD, shapes, the disk cache and the original-space helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.explore import projection
from engine.errors import EngineError, ParameterError
from engine.explore.projection import (
    cache_file,
    cached_projection,
    kmeans_labels,
    nearest_neighbours,
    project,
    projection_key,
    resolve_params,
)


@pytest.fixture
def points():
    rng = np.random.default_rng(0)
    # Three directions of clearly different spread: PCA must find them in that order.
    return (rng.normal(size=(60, 5)) * np.array([5.0, 2.0, 1.0, 0.3, 0.1])).astype(np.float32)


@pytest.fixture
def checkpoint(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"model": "bpr", "params": {"factors": 5}}))
    return folder


def test_pca_explained_variance_matches_numpy_svd(points):
    result = project(points, "pca", 3)
    centred = points.astype(np.float64) - points.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    expected = singular**2 / (singular**2).sum()
    np.testing.assert_allclose(result.explained_variance_ratio, expected[:3], rtol=1e-4)
    assert result.explained_variance_ratio[0] > 0.7  # the spread-5 axis dominates (25 of ~30)
    # Coordinates are the centred points on the principal axes: same variance per axis.
    np.testing.assert_allclose(result.coords.var(0, ddof=1), singular[:3] ** 2 / (len(points) - 1), rtol=1e-3)


def test_pca_of_a_hand_worked_matrix():
    # Points on the line y = 2x (plus the origin): all variance on one axis.
    x = np.array([[0, 0], [1, 2], [2, 4], [3, 6], [-1, -2]], np.float32)
    result = project(x, "pca", 2)
    np.testing.assert_allclose(result.explained_variance_ratio, [1.0, 0.0], atol=1e-6)
    # First coordinate is the signed distance along the line from the mean (x=1, y=2).
    np.testing.assert_allclose(np.abs(result.coords[:, 0]), np.abs(np.array([-1, 0, 1, 2, -2]) * np.sqrt(5)), rtol=1e-5)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_output_shapes(points, method, dims):
    result = project(points, method, dims, params={"perplexity": 5.0} if method == "tsne" else None)
    assert result.coords.shape == (len(points), dims)
    assert result.coords.dtype == np.float32 and np.isfinite(result.coords).all()
    assert (result.explained_variance_ratio is None) == (method != "pca")


def test_umap_shape_determinism_and_stages(points):
    events = []
    a = project(points, "umap", 2, params={"n_neighbors": 5, "n_epochs": 50}, callback=events.append)
    b = project(points, "umap", 2, params={"n_neighbors": 5, "n_epochs": 50})
    assert a.coords.shape == (len(points), 2) and np.isfinite(a.coords).all()
    np.testing.assert_array_equal(a.coords, b.coords)  # fixed random_state
    assert [e["stage"] for e in events] == ["neighbours", "layout"]
    assert a.params == {"n_neighbors": 5, "min_dist": 0.1, "n_epochs": 50, "init": "pca",
                        "metric": "cosine", "random_state": 0}


def test_bad_arguments_are_refused(points):
    with pytest.raises(ParameterError, match="dims"):
        project(points, "pca", 4)
    with pytest.raises(ParameterError, match="unknown projection method 'mds'"):
        project(points, "mds", 2)
    with pytest.raises(ParameterError, match="perplexity"):
        resolve_params("umap", {"perplexity": 3})
    with pytest.raises(ParameterError, match="need at least"):
        project(points[:, :2], "pca", 3)
    bad = points.copy()
    bad[3, 1] = np.nan
    with pytest.raises(EngineError, match="NaN"):
        project(bad, "pca", 2)


@pytest.mark.parametrize(
    ("method", "params", "needle"),
    [
        ("umap", {"min_dist": float("nan")}, "'min_dist' must be a finite number"),
        ("umap", {"min_dist": float("inf")}, "'min_dist' must be a finite number"),
        ("umap", {"min_dist": -0.5}, "'min_dist' must be a finite number >= 0"),
        ("umap", {"n_neighbors": 7.5}, "'n_neighbors' must be a whole number"),
        ("umap", {"n_epochs": "200"}, "'n_epochs' must be a whole number"),
        ("tsne", {"perplexity": float("nan")}, "'perplexity' must be a finite number"),
        ("tsne", {"perplexity": 0}, "'perplexity' must be a finite number"),
    ],
)
def test_non_finite_parameters_are_refused_before_computing(points, monkeypatch, method, params, needle):
    """A NaN min_dist (or perplexity) was a traceback from umap (scikit-learn) after 30 s of CPU."""
    monkeypatch.setattr(projection, "_umap", lambda *a, **k: pytest.fail("computed with a bad parameter"))
    with pytest.raises(ParameterError, match=needle):
        project(points, method, 2, params=params)


class CountingProject:
    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return _real_project(*args, **kwargs)


_real_project = projection.project


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_disk_cache_hit_is_identical_and_not_recomputed(points, checkpoint, tmp_path, monkeypatch, method):
    counter = CountingProject()
    monkeypatch.setattr(projection, "project", counter)
    params = {"perplexity": 5.0} if method == "tsne" else None
    key = projection_key(checkpoint, "items", method, 2, params)
    events = []
    where = {"params": params, "cache_dir": tmp_path / "cache", "key": key, "callback": events.append}
    first = cached_projection(points, method, 2, **where)
    second = cached_projection(points, method, 2, **where)
    assert counter.calls == 1
    assert not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.coords, second.coords)
    if method == "pca":
        np.testing.assert_allclose(second.explained_variance_ratio, first.explained_variance_ratio, rtol=1e-6)
    else:
        assert second.explained_variance_ratio is None
    stages = ["compute", "done", "cache"] if method == "pca" else ["compute", "layout", "done", "cache"]
    assert [e["stage"] for e in events] == stages
    assert cache_file(tmp_path / "cache", key).is_file()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("damage", [b"not a numpy file", None])
def test_corrupt_cache_file_is_recomputed(points, checkpoint, tmp_path, monkeypatch, damage):
    counter = CountingProject()
    monkeypatch.setattr(projection, "project", counter)
    key = projection_key(checkpoint, "items", "pca", 2)
    path = cache_file(tmp_path, key)
    if damage is None:  # a readable file of the wrong shape (e.g. another catalogue size)
        np.save(path, np.zeros((7, 2), np.float32))
    else:
        path.write_bytes(damage)
    result = cached_projection(points, "pca", 2, cache_dir=tmp_path, key=key)
    assert counter.calls == 1 and not result.from_cache
    again = cached_projection(points, "pca", 2, cache_dir=tmp_path, key=key)
    assert counter.calls == 1 and again.from_cache  # the bad file was replaced
    np.testing.assert_array_equal(again.coords, result.coords)


def test_key_changes_with_the_checkpoint_and_the_settings(checkpoint, tmp_path):
    base = projection_key(checkpoint, "items", "umap", 2)
    assert base == projection_key(checkpoint, "items", "umap", 2, {"n_neighbors": 15})  # defaults spelled out
    assert base != projection_key(checkpoint, "users", "umap", 2)
    assert base != projection_key(checkpoint, "items", "umap", 3)
    assert base != projection_key(checkpoint, "items", "umap", 2, {"min_dist": 0.5})
    assert base != projection_key(checkpoint, "items", "pca", 2)
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.json").write_bytes((checkpoint / "model.json").read_bytes())
    assert base != projection_key(other, "items", "umap", 2)  # another checkpoint path
    # Retraining rewrites model.json in place: new content, new key.
    (checkpoint / "model.json").write_text(json.dumps({"model": "bpr", "params": {"factors": 6}}))
    assert base != projection_key(checkpoint, "items", "umap", 2)
    with pytest.raises(EngineError, match="model.json"):
        projection_key(tmp_path / "absent", "items", "pca", 2)


def test_kmeans_labels_find_separated_blobs():
    rng = np.random.default_rng(1)
    centres = np.array([[10, 0], [0, 10], [-10, -10]], np.float32)
    x = np.repeat(centres, 20, axis=0) + rng.normal(scale=0.5, size=(60, 2)).astype(np.float32)
    labels = kmeans_labels(x, 3)
    assert labels.shape == (60,) and set(labels) == {0, 1, 2}
    # Each blob is one cluster and the clusters differ.
    blobs = [set(labels[i * 20 : (i + 1) * 20]) for i in range(3)]
    assert all(len(b) == 1 for b in blobs) and len(set.union(*blobs)) == 3
    with pytest.raises(ParameterError):
        kmeans_labels(x, 1)


def test_nearest_neighbours_by_cosine():
    x = np.array([[1, 0], [2, 0.1], [0, 1], [-1, 0], [0.9, 0.9]], np.float32)
    idx, sim = nearest_neighbours(x, [0, 2], k=2)
    # Row 0 points along x: row 1 (almost the same direction, longer) then row 4 (45 degrees).
    assert idx[0].tolist() == [1, 4]
    np.testing.assert_allclose(sim[0], [2 / np.hypot(2, 0.1), np.sqrt(0.5)], rtol=1e-5)
    assert idx[1].tolist() == [4, 1]
    assert 0 not in idx[0] and 2 not in idx[1]  # never itself
    with pytest.raises(ParameterError, match="outside"):
        nearest_neighbours(x, [5])


# ---- the operator's limit on UMAP and t-SNE points ------------------------------------------
@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_umap_and_tsne_over_the_point_limit_are_refused_before_computing(points, checkpoint, tmp_path, monkeypatch, method):
    monkeypatch.setenv("RECSYS_PROJECTION_MAX_POINTS", "59")
    monkeypatch.setattr(projection, "_umap", lambda *a, **k: pytest.fail("computed over the limit"))
    import sklearn.manifold

    monkeypatch.setattr(sklearn.manifold, "TSNE", lambda *a, **k: pytest.fail("computed over the limit"))
    events = []
    expected = rf"^{method} of 60 points is over the limit of 59 \(PCA has none; the operator can raise it with RECSYS_PROJECTION_MAX_POINTS\)$"
    with pytest.raises(ParameterError, match=expected):
        project(points, method, 2)
    with pytest.raises(ParameterError, match=expected):
        cached_projection(points, method, 2, cache_dir=tmp_path / "cache", key="k", callback=events.append)
    assert events == [] and not (tmp_path / "cache").exists()
    assert project(points, "pca", 2).coords.shape == (60, 2)  # PCA has no limit


def test_up_to_the_point_limit_projects_and_the_default_holds_the_shipped_datasets(points, monkeypatch):
    assert projection.DEFAULT_MAX_POINTS >= 9_066  # the default dataset's items, the largest set shown
    monkeypatch.setenv("RECSYS_PROJECTION_MAX_POINTS", "60")
    assert project(points, "tsne", 2, params={"perplexity": 5.0}).coords.shape == (60, 2)
    monkeypatch.setenv("RECSYS_PROJECTION_MAX_POINTS", "many")
    with pytest.raises(ParameterError, match=r"^RECSYS_PROJECTION_MAX_POINTS='many' is not a whole number >= 1"):
        project(points, "umap", 2)


def test_the_first_genre_offered_covers_at_most_a_third_of_the_items():
    import pandas as pd

    from engine.data import from_frames

    # Drama on 4 of 6 items, Horror on 2, Comedy on 1: Horror leads, then by size.
    genres = ["Drama|Horror", "Drama|Horror", "Drama", "Drama|Comedy", "Western", "Western"]
    items = pd.DataFrame({"item_id": range(6), "title": list("abcdef"), "genres": genres, "year": 2000})
    ratings = pd.DataFrame({"user_id": ["u"] * 6, "item_id": range(6)})
    ds = from_frames("toy", ratings, items)
    assert projection.genres_by_size(ds) == ["Horror", "Drama", "Western", "Comedy"]
    bare = from_frames("bare", ratings, items.drop(columns="genres"))
    assert projection.genres_by_size(bare) == []  # the page then offers no genre colour


def test_point_table_labels_genres_and_activity():
    import pandas as pd

    from engine.data import from_frames

    ratings = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": [1, 2, 2]})
    items = pd.DataFrame({
        "item_id": [1, 2],
        "title": ["Toy Story", "Heat (1995)"],
        "genres": ["Animation|Comedy", "(no genres listed)"],
        "year": [1995, 1995],
    })  # fmt: skip
    ds = from_frames("toy", ratings, items)
    table = projection.point_table(ds, "items")
    # The year is added where the title lacks it; "no genres" reads the same as an empty one.
    assert table["label"].tolist() == ["Toy Story (1995)", "Heat (1995)"]
    assert table["popularity"].tolist() == [1, 2]
    # Genres are coloured one at a time; "no genres" is not a genre.
    assert projection.genres_by_size(ds) == ["Animation", "Comedy"]
    assert projection.genre_labels(ds, "Comedy").tolist() == ["Comedy", projection.OTHER_GENRES]
    with pytest.raises(ParameterError, match=r"^unknown genre 'Comdy' \(did you mean 'Comedy'\?"):
        projection.genre_labels(ds, "Comdy")
    users = projection.point_table(ds, "users")
    assert users["label"].tolist() == ["user a", "user b"] and users["activity"].tolist() == [2, 1]
