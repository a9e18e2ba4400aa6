"""Item pictures attached to any dataset with ``+images:DIR`` (`engine.data.images`)."""

from __future__ import annotations

import base64
import io
import os
import warnings

import pytest
from PIL import Image

from engine.data import load_dataset
from engine.data.access import PathRefusedError, check_spec_paths, spec_allowed
from engine.data.images import (
    THUMBNAIL_SIZE,
    placeholder_uri,
    split_spec,
    thumbnail_file,
    thumbnail_uri,
    with_images,
)
from engine.data.visual import load_image
from engine.errors import DatasetError
from tests import poster_folder
from tests.poster_folder import CORRUPT, GOOD, ITEMS, MISSING, TRUNCATED


@pytest.fixture
def folders(tmp_path):
    ratings = poster_folder.write_ratings(tmp_path / "ratings.csv")
    posters = poster_folder.write_posters(tmp_path / "posters")
    return ratings, posters


def load(ratings, posters):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(f"csv:{ratings}+images:{posters}")
    return ds, [str(w.message) for w in caught]


@pytest.mark.parametrize(
    "spec, parts",
    [
        ("movielens-dslabs+images:data/posters", ("movielens-dslabs", "data/posters")),
        ("ml-100k:/d/ml-100k+images:/p", ("ml-100k:/d/ml-100k", "/p")),
        ("movielens-dslabs images:data/posters", ("movielens-dslabs", "data/posters")),  # '+' read from a URL as ' '
        ("  movielens-dslabs  ", ("movielens-dslabs", None)),
        ("csv:/a+b.csv", ("csv:/a+b.csv", None)),
    ],
)
def test_split_spec(spec, parts):
    assert split_spec(spec) == parts


def test_with_images_replaces_or_removes_the_folder():
    assert with_images("movielens-dslabs", "p") == "movielens-dslabs+images:p"
    assert with_images("movielens-dslabs+images:p", "q") == "movielens-dslabs+images:q"
    assert with_images("movielens-dslabs+images:p", None) == "movielens-dslabs"


@pytest.mark.parametrize("spec", ["movielens-dslabs+images", "movielens-dslabs+images:", "movielens-dslabs+images:  "])
def test_images_without_a_folder_is_one_line(spec):
    with pytest.raises(DatasetError, match=r"name the picture folder after \+images:"):
        load_dataset(spec)


def test_a_missing_picture_folder_is_one_line(folders, tmp_path):
    ratings, _ = folders
    with pytest.raises(DatasetError, match="does not exist") as info:
        load_dataset(f"csv:{ratings}+images:{tmp_path / 'nowhere'}")
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="is not a folder"):
        load_dataset(f"csv:{ratings}+images:{ratings}")


def test_pictures_attach_and_problems_are_reported_not_raised(folders):
    ratings, posters = folders
    plain = load_dataset(f"csv:{ratings}")
    ds, messages = load(ratings, posters)
    assert ds.name == "csv" and ds.spec == f"csv:{ratings}+images:{posters}"
    # Every item keeps its interactions, with or without a picture.
    assert ds.n_items == plain.n_items == len(ITEMS) and ds.n_interactions == plain.n_interactions
    by_id = dict(zip(ds.item_ids, ds.items["image"]))
    assert by_id["1"] == "1.jpg" and by_id["5"] == "5.JPG" and by_id["3"] == "3.webp"
    assert all(by_id[i] == "" for i in MISSING + CORRUPT + TRUNCATED)
    problems = ds.extras["image_problems"]
    assert problems["count"] == 3 and problems["with_image"] == len(GOOD)
    assert problems["missing"] == MISSING and problems["unreadable"] == sorted(CORRUPT + TRUNCATED)
    assert problems["not_images"] == ["notes.txt", "subfolder"]
    assert ds.summary()["has_images"]
    [line] = messages
    assert line.startswith("images: 3 of 8 items have no usable picture: 1 missing (6); 2 unreadable (7, 8)")
    assert "2 file(s) are not pictures" in line and "\n" not in line


def test_the_fingerprint_covers_the_picture_set(folders):
    ratings, posters = folders
    plain = load_dataset(f"csv:{ratings}")
    first, _ = load(ratings, posters)
    again, _ = load(ratings, posters)
    assert first.fingerprint == again.fingerprint != plain.fingerprint
    poster_folder.poster(185, 278, 42).save(posters / "1.jpg")  # another picture for item 1
    changed, _ = load(ratings, posters)
    assert changed.fingerprint != first.fingerprint
    (posters / "notes.txt").write_text("more notes")  # not a picture of an item: no change
    assert load(ratings, posters)[0].fingerprint == changed.fingerprint


def test_thumbnails_are_small_made_once_and_keyed_by_the_file(folders, tmp_path):
    ratings, posters = folders
    ds, _ = load(ratings, posters)
    cache = tmp_path / "thumbs"
    item = ds.item_index("5")  # 500x750
    file = thumbnail_file(ds, item, cache)
    with Image.open(file) as im:
        assert im.format == "JPEG" and max(im.size) == THUMBNAIL_SIZE and im.size == (64, 96)  # aspect kept
    assert file.stat().st_size < 8_000
    stamp = file.stat().st_mtime_ns
    assert thumbnail_file(ds, item, cache) == file and file.stat().st_mtime_ns == stamp  # read back, not remade
    # A changed picture gets its own thumbnail.
    poster_folder.poster(300, 300, 7).save(posters / "5.JPG", format="JPEG")
    os.utime(posters / "5.JPG", ns=(stamp + 10**9, stamp + 10**9))
    other = thumbnail_file(ds, item, cache)
    assert other != file
    with Image.open(other) as im:
        assert im.size == (96, 96)
    # A tiny picture is not enlarged.
    with Image.open(thumbnail_file(ds, ds.item_index("3"), cache)) as im:
        assert im.size == (40, 40)


def test_items_without_a_picture_get_the_placeholder(folders, tmp_path):
    ratings, posters = folders
    ds, _ = load(ratings, posters)
    for item in MISSING + CORRUPT + TRUNCATED:
        idx = ds.item_index(item)
        assert thumbnail_file(ds, idx, tmp_path / "thumbs") is None
        assert thumbnail_uri(ds, idx, tmp_path / "thumbs") == placeholder_uri()
        image = load_image(ds, idx, 224)  # what features see: neutral grey, not a crash
        assert image.size == (224, 224) and image.getpixel((112, 112)) == (215, 215, 215)
    uri = thumbnail_uri(ds, ds.item_index("2"), tmp_path / "thumbs")
    assert uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        assert im.size == (96, 64)
    # A picture removed after loading: the placeholder too.
    (posters / "4.jpeg").unlink()
    assert thumbnail_uri(ds, ds.item_index("4"), tmp_path / "thumbs") == placeholder_uri()


def test_a_visual_dataset_can_take_another_folder(tmp_path):
    from engine.data.visual import generate_visual_synthetic

    folder = generate_visual_synthetic(tmp_path / "vis", n_users=4, n_items=6, min_interactions=3, max_interactions=4)
    other = tmp_path / "other"
    other.mkdir()
    poster_folder.poster(100, 150, 1).save(other / "1.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(f"visual:{folder}+images:{other}")
    assert ds.name == "visual" and ds.images_dir == str(other)
    assert (ds.items["image"] != "").sum() == 1


# ---- paths a visitor may name --------------------------------------------------------------
@pytest.fixture
def layout(tmp_path, monkeypatch):
    data, outside = tmp_path / "data", tmp_path / "outside"
    poster_folder.write_posters(data / "posters")
    poster_folder.write_posters(outside / "posters")
    monkeypatch.chdir(data)
    return data, outside


def test_picture_folders_inside_the_data_folder_pass(layout):
    data, _ = layout
    specs = ("movielens-dslabs+images:posters", f"movielens-dslabs+images:{data / 'posters'}", "ml-100k+images:./posters")
    for spec in specs:
        check_spec_paths(spec, data)


@pytest.mark.parametrize(
    "folder", ["/proc", "/proc/self", "../outside/posters", "posters/../../outside/posters", "/", "~", "/etc"]
)
def test_picture_folders_outside_are_refused_in_one_line(layout, folder):
    data, _ = layout
    spec = f"movielens-dslabs+images:{folder}"
    with pytest.raises(PathRefusedError) as info:
        check_spec_paths(spec, data)
    message = str(info.value)
    assert message.startswith("images: ") and "operator allowed" in message and "\n" not in message
    assert not spec_allowed(spec, data)


def test_the_refusal_is_the_same_whether_the_folder_exists(layout):
    data, outside = layout
    def refusal(folder) -> str:
        with pytest.raises(PathRefusedError) as info:
            check_spec_paths(f"movielens-dslabs+images:{folder}", data)
        return str(info.value)

    assert refusal(outside / "posters") == refusal(outside / "nothing")


def test_a_symlinked_picture_folder_and_an_allowed_root(layout):
    data, outside = layout
    (data / "linked").symlink_to(outside / "posters")
    with pytest.raises(PathRefusedError):
        check_spec_paths("movielens-dslabs+images:linked", data)
    check_spec_paths("movielens-dslabs+images:linked", data, [outside])
    # The base spec is still checked with its own rules.
    with pytest.raises(PathRefusedError, match="^csv: "):
        check_spec_paths("csv:/etc/passwd+images:posters", data)
    assert not spec_allowed("movielens-dslabs+images", data)  # malformed: not offered


# ---- the spec survives the command line, checkpoints and the runs table -------------------
def test_the_spec_round_trips_through_the_cli_and_a_changed_picture_is_refused(folders, tmp_path, capsys):
    import json

    from engine.cli import main
    from engine.runs.store import RunsDB

    ratings, posters = folders
    spec = f"csv:{ratings}+images:{posters}"
    data = tmp_path / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(["--data-dir", str(data), "train", "--dataset", spec, "--model", "popularity", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["dataset"] == spec
        assert RunsDB(data / "runs.sqlite").list(spec)["id"].tolist() == [result["run_id"]]
        recommend = ["--data-dir", str(data), "recommend", "--checkpoint", result["checkpoint"], "--user", "1"]
        assert main([*recommend, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["recommendations"]
        # Another picture for item 1 (another size): the checkpoint's dataset changed.
        poster_folder.poster(90, 90, 5).save(posters / "1.jpg")
        code = main(recommend)
    out, err = capsys.readouterr()
    assert code != 0 and out == "" and "fingerprint" in err and len(err.strip().splitlines()) == 1
