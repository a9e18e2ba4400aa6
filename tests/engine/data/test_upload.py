"""Uploaded CSVs with any column names become files the csv: loader reads; bad ones write nothing."""

from __future__ import annotations

import pytest

from engine.data import load_dataset
from engine.data.upload import check_mapping, guess_mapping, read_header, save_upload
from engine.errors import DatasetError

CSV = b"who,what,score,at\nu1,i1,5,10\nu1,i2,3,20\nu2,i1,4,15\n"
MAPPING = {"user": "who", "item": "what", "rating": "score", "timestamp": "at"}


def test_saved_file_loads_with_the_mapped_columns(tmp_path):
    path = save_upload(CSV, MAPPING, tmp_path / "uploads", name="My ratings!.csv")
    assert path.parent == tmp_path / "uploads" and path.name.startswith("My_ratings-")
    assert path.read_text() == "user,item,rating,timestamp\nu1,i1,5,10\nu1,i2,3,20\nu2,i1,4,15\n"
    ds = load_dataset(f"csv:{path}")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 2, 3) and ds.has_ratings
    assert list(tmp_path.joinpath("uploads").iterdir()) == [path]  # no scratch folder left


def test_same_upload_same_file_other_upload_other_file(tmp_path):
    first = save_upload(CSV, MAPPING, tmp_path, name="r.csv")
    assert save_upload(CSV, MAPPING, tmp_path, name="r.csv") == first
    implicit = save_upload(CSV, {"user": "who", "item": "what"}, tmp_path, name="r.csv")
    assert implicit != first and implicit.read_text().splitlines()[0] == "user,item"
    assert not load_dataset(f"csv:{implicit}").has_ratings


def test_ids_that_look_like_missing_values_are_kept(tmp_path):
    path = save_upload(b"u,i\nNA,None\nnull,NA\n", {"user": "u", "item": "i"}, tmp_path)
    assert path.read_text() == "user,item\nNA,None\nnull,NA\n"


@pytest.mark.parametrize(
    ("content", "mapping", "message"),
    [
        (b"a,b,c\n1,2,3\n1,2,3,4\n", {"user": "a", "item": "b"}, "Expected 3 fields in line 3, saw 4"),
        (b"a,b,c\n1,2,x\n", {"user": "a", "item": "b", "rating": "c"}, "up.csv line 2: rating 'x' is not a number"),
        (b"a,b\n1,\n", {"user": "a", "item": "b"}, "up.csv line 2: item is missing"),
        (b"a,b,t\n1,2,yesterday-ish\n", {"user": "a", "item": "b", "timestamp": "t"}, "neither a number nor a date"),
        (b"a,b,c\n1,2,inf\n", {"user": "a", "item": "b", "rating": "c"}, "up.csv line 2: rating 'inf' is not a finite"),
        (b"a,b,t\n1,2,5\n1,3,1500-01-01\n", {"user": "a", "item": "b", "timestamp": "t"}, "use numbers or dates, not both"),
        (b"a,b\n", {"user": "a", "item": "b"}, "up.csv: no interactions in the file"),
        (b"", {"user": "a", "item": "b"}, "up.csv: the file is empty"),
        (b"\xff\xfea,b\n", {"user": "a", "item": "b"}, "up.csv: not a UTF-8 CSV file"),
        (b"a,b\n1,2\n", {"user": "a", "item": "a"}, "column 'a' is mapped to more than one role"),
        (b"a,b\n1,2\n", {"user": "a", "item": None}, "choose the item column"),
        (b"a,b\n1,2\n", {"user": "a", "item": "z"}, "column 'z' is not in the file (columns: a, b)"),
    ],
)
def test_malformed_uploads_raise_one_line_and_write_nothing(tmp_path, content, mapping, message):
    with pytest.raises(DatasetError) as info:
        save_upload(content, mapping, tmp_path / "uploads", name="up.csv")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "uploads").exists() or list((tmp_path / "uploads").iterdir()) == []


def test_header_and_guessed_mapping():
    header = read_header(b"UserID, movieId ,Rating,extra\n1,2,3,4\n")
    assert header == ["UserID", "movieId", "Rating", "extra"]
    assert guess_mapping(header) == {"user": "UserID", "item": "movieId", "rating": "Rating", "timestamp": None}
    assert guess_mapping(["a", "b"]) == {"user": None, "item": None, "rating": None, "timestamp": None}
    with pytest.raises(DatasetError, match="need at least a user and an item column"):
        read_header(b"only\n1\n")


def test_check_mapping_drops_unmapped_roles():
    assert check_mapping(["a", "b", "c"], {"user": "b", "item": "a", "rating": None}) == {"user": "b", "item": "a"}
    with pytest.raises(DatasetError, match="unknown column role"):
        check_mapping(["a", "b"], {"user": "a", "item": "b", "weight": "a"})


def test_spaces_around_header_names_are_ignored(tmp_path):
    path = save_upload(b"u , i \n1,2\n", {"user": "u", "item": "i"}, tmp_path)
    assert path.read_text() == "user,item\n1,2\n"
