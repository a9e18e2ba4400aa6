"""Uploaded CSVs with any column names become files the csv: loader reads; bad ones write nothing."""

from __future__ import annotations

import io
import re

import pytest

from engine.data import load_dataset, upload
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


# ---- limits: bytes before parsing, rows while parsing in chunks ------------------------------
def test_over_the_size_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_UPLOAD_MAX_MB", "1")
    # Not even UTF-8 after the header: parsed, it would be a decoding error, not the size.
    content = b"a,b\n" + b"\xff" * (1024 * 1024)
    expected = r"^big.csv: 1.0 MB is over the upload limit of 1 MB \(the operator can raise it with RECSYS_UPLOAD_MAX_MB\)$"
    with pytest.raises(DatasetError, match=expected):
        read_header(content, name="big.csv")
    with pytest.raises(DatasetError, match=expected):
        save_upload(content, {"user": "a", "item": "b"}, tmp_path, name="big.csv")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("RECSYS_UPLOAD_MAX_MB", "2")
    assert read_header(content[:100]) == ["a", "b"]  # within the limit: read as before


def test_rows_are_counted_while_reading_and_reading_stops_at_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "CHUNK_ROWS", 2)
    monkeypatch.setenv("RECSYS_UPLOAD_MAX_ROWS", "4")
    rows = b"".join(b"u%d,i%d\n" % (n, n) for n in range(4))
    exactly = save_upload(b"a,b\n" + rows, {"user": "a", "item": "b"}, tmp_path / "ok")
    assert exactly.read_bytes() == b"user,item\n" + rows  # every chunk, in order, once
    # A broken last line 1 MB further is never reached: the file is read a chunk at a time (pandas
    # reads ahead 256 KB of bytes) and given up at the limit. Read whole, the line is the error.
    content = b"a,b\n" + rows + b"u9,i9\n" * 200_000 + b"x,y,z\n"
    with pytest.raises(DatasetError, match=r"^up.csv: more than 4 rows, the upload limit \(the operator can raise it with RECSYS_UPLOAD_MAX_ROWS\)$"):
        save_upload(content, {"user": "a", "item": "b"}, tmp_path / "over", name="up.csv")
    assert list((tmp_path / "over").iterdir()) == []  # no scratch folder, no partial file


def test_line_numbers_of_errors_count_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "CHUNK_ROWS", 2)
    content = b"a,b,c\n" + b"1,2,3\n" * 5 + b"1,2,3,4\n"
    with pytest.raises(DatasetError, match="Expected 3 fields in line 7, saw 4"):
        save_upload(content, {"user": "a", "item": "b"}, tmp_path)


def test_a_file_object_is_read_from_its_start_without_a_copy(tmp_path):
    stream = io.BytesIO(CSV)
    assert read_header(stream) == ["who", "what", "score", "at"]
    path = save_upload(stream, MAPPING, tmp_path, name="r.csv")  # after read_header moved it
    assert path == save_upload(CSV, MAPPING, tmp_path, name="r.csv")  # same content, same file
    assert path.read_text().count("\n") == 4


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_a_malformed_limit_is_one_line_naming_the_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv("RECSYS_UPLOAD_MAX_ROWS", value)
    with pytest.raises(DatasetError, match=rf"^RECSYS_UPLOAD_MAX_ROWS='{re.escape(value)}' is not a whole number >= 1"):
        save_upload(CSV, MAPPING, tmp_path)
    assert list(tmp_path.iterdir()) == []
