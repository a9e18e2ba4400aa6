"""A folder in the ML-100k file formats, generated from a seeded latent-factor model.

The tests read it through the real loader (``load_dataset("ml-100k:DIR")``), so they need no
copy of MovieLens: `write_ml100k` writes ``u.data``, ``u.item``, ``u.user``, ``u.genre`` and
``u.occupation`` exactly as GroupLens ships them, with the same sizes (943 users, 1,682 items,
100,000 ratings, every user with at least 20 ratings, every item rated at least once).

The structure is there for models to find, as in the real data:

- users and items have Gaussian taste factors; a user's films are drawn without replacement with
  probability proportional to ``exp(AFFINITY * p_u . q_i + popularity_i)`` (Gumbel top-k), the
  popularity a Zipf-like long tail, so both popularity and personal taste predict a held-out film;
- genres are thresholds of the item factors along one direction per genre, the release year
  follows another direction, and the user's age the same one (older users like older films);
  gender and occupation lean on other directions of the user factors;
- ratings 1-5 grow with taste, in the real data's proportions; each user's timestamps increase
  in bursts of ratings within the same second, as in the real file (whose ties at a user's
  latest second make the split's tie-break matter);
- a "saga" of three films shares one taste vector, so a model of co-occurrence should find the
  sequels as the first film's neighbours (the role of Star Wars and its sequels in ML-100k).

The file also carries the real file's quirks: latin-1 titles, a film whose title year differs
from its release date's, one whose year is known only from its release date, and an "unknown"
film with neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote_plus

import numpy as np
import pandas as pd

from engine.data.loaders import ML100K_GENRES

N_USERS, N_ITEMS, N_RATINGS = 943, 1682, 100_000
MIN_RATINGS, MAX_RATINGS = 20, 740  # per user, about as in ML-100k
FACTORS = 8
AFFINITY = 1.75  # weight of taste against popularity when a user picks films
POPULARITY_EXPONENT = 0.45  # Zipf exponent of the head of the popularity curve
TAIL = 4.5  # extra decay along the ranks, which thins the tail

GENRES = ML100K_GENRES  # u.genre's 19 names, in the order of u.item's flag columns
# Share of films flagged with each genre (after "unknown"), about as in ML-100k.
GENRE_SHARE = (
    0.15, 0.08, 0.025, 0.07, 0.30, 0.065, 0.03, 0.43, 0.013, 0.014, 0.055, 0.033, 0.036, 0.15, 0.06,
    0.15, 0.042, 0.016,
)  # fmt: skip
# ML-100k's occupations with roughly their number of users.
OCCUPATIONS = {
    "administrator": 79, "artist": 28, "doctor": 7, "educator": 95, "engineer": 67, "entertainment": 18,
    "executive": 32, "healthcare": 16, "homemaker": 7, "lawyer": 12, "librarian": 51, "marketing": 26,
    "none": 9, "other": 105, "programmer": 66, "retired": 14, "salesman": 12, "scientist": 31,
    "student": 196, "technician": 27, "writer": 45,
}  # fmt: skip
# Share of ratings at 1..5 stars in ML-100k.
RATING_SHARE = (0.061, 0.114, 0.271, 0.342, 0.212)

SAGA = ("Starfall (1977)", "Starfall II: The Dark Moon (1980)", "Starfall III: Homecoming (1983)")
_ADJECTIVES = (
    "Silent", "Broken", "Golden", "Last", "Lost", "Crimson", "Hidden", "Wild", "Quiet", "Dark",
    "Bright", "Cold", "Little", "Long", "Secret", "Burning", "Distant", "Frozen", "Lonely", "Restless",
    "Sweet", "Bitter", "Strange", "Endless", "Electric", "Savage", "Gentle", "Hollow", "Velvet", "Iron",
)  # fmt: skip
_NOUNS = (
    "Harbor", "River", "Summer", "Road", "Garden", "Promise", "Witness", "Kingdom", "Stranger", "Island",
    "Mirror", "Letter", "Season", "Horizon", "Bridge", "Dance", "Ghost", "Heart", "Journey", "Mountain",
    "Night", "Orchard", "Painter", "Rain", "Shadow", "Storm", "Train", "Valley", "Voyage", "Winter",
    "Café", "Señor", "Château", "Fräulein", "Déjà Vu", "Piñata", "Matador", "Detective", "Sheriff", "Sailor",
)  # fmt: skip
_PLACES = (
    "Paris", "Texas", "Brooklyn", "Montréal", "the North", "the Desert", "Vienna", "the Moon", "Tokyo",
    "Mars", "Sevilla", "Zürich",
)  # fmt: skip
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_START = 874_724_710  # 1997-09-20, the first second of ML-100k
_END = 893_286_638  # 1998-04-22, its last


class Ml100kFixture(NamedTuple):
    """What `write_ml100k` wrote, with raw ids as strings (as the loader reports them).

    Attributes
    ----------
    path : the folder.
    ratings : ``user_id, item_id, rating, timestamp``, in file order.
    items : ``item_id, title, release_date, genres`` (``|``-joined), ``year`` (the title's year,
        else the release date's, else NaN).
    users : ``user_id, age, gender, occupation, zip``.
    saga : item ids of the three films that share one taste vector, the first film first.
    title_year_differs : an item whose title year differs from its release date's year.
    year_from_date : an item whose title has no year but whose release date has one.
    no_year : the "unknown" item, with neither.
    """

    path: Path
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    saga: tuple[str, str, str]
    title_year_differs: str
    year_from_date: str
    no_year: str


def write_ml100k(folder, *, seed: int = 0) -> Ml100kFixture:
    """Write the ML-100k files into `folder` (created) and return what they hold."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scale = FACTORS**-0.25  # makes p_u . q_i roughly N(0, 1)
    users_f = rng.normal(0.0, scale, (N_USERS, FACTORS))
    items_f = rng.normal(0.0, scale, (N_ITEMS, FACTORS))
    rank = rng.permutation(N_ITEMS) + 1.0
    popularity = -POPULARITY_EXPONENT * np.log(rank) - TAIL * rank / N_ITEMS
    saga = rng.choice(np.argsort(-popularity)[10:40], 3, replace=False)  # popular, not the top
    items_f[saga] = 1.3 * items_f[saga[0]] + rng.normal(0.0, 0.05 * scale, (3, FACTORS))

    year_direction = rng.normal(0.0, 1.0, FACTORS)  # shared: older users like older films
    items, flags, quirks = _catalogue(rng, items_f, saga, year_direction)
    users = _people(rng, users_f, year_direction)
    ratings = _ratings(rng, users_f, items_f, popularity)
    _write(folder, ratings, items, flags, users)
    ids = items["item_id"].to_numpy()
    return Ml100kFixture(folder, ratings, items, users, tuple(ids[saga]), *ids[list(quirks)])


# ---- items -------------------------------------------------------------------------------------
def _standard(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def _catalogue(rng, items_f: np.ndarray, saga: np.ndarray, year_direction: np.ndarray):
    """The items' frame, their (n_items, 19) genre flags and the indices of the three quirks."""
    directions = rng.normal(0.0, 1.0, (len(GENRE_SHARE), FACTORS))
    # Genres: the films furthest along a genre's direction carry it, noise blurring the edge.
    lean = _standard_columns(items_f @ directions.T) + rng.normal(0.0, 0.5, (N_ITEMS, len(GENRE_SHARE)))
    cut = [np.quantile(lean[:, g], 1.0 - share) for g, share in enumerate(GENRE_SHARE)]
    flags = lean > np.asarray(cut)
    none = ~flags.any(axis=1)
    flags[none, lean[none].argmax(axis=1)] = True
    flags = np.hstack([np.zeros((N_ITEMS, 1), bool), flags])
    # Mostly recent films; older ones lie along the year direction (shared with users' age).
    age = np.exp(1.3 + 0.9 * _standard(items_f @ year_direction) + rng.normal(0.0, 0.4, N_ITEMS))
    year = np.clip(1998 - np.floor(age), 1922, 1998).astype(int)
    year[saga] = (1977, 1980, 1983)

    titles = _titles(rng, N_ITEMS)
    titles[saga] = SAGA
    titles = np.array([t if t in SAGA else f"{t} ({y})" for t, y in zip(titles, year)], dtype=object)
    day, month = rng.integers(1, 29, N_ITEMS), rng.integers(0, 12, N_ITEMS)
    exact = rng.random(N_ITEMS) < 0.35  # most films are dated 01-Jan of their year, as in ML-100k
    release = [f"{d:02d}-{_MONTHS[m]}-{y}" if e else f"01-Jan-{y}" for d, m, y, e in zip(day, month, year, exact)]
    release = np.array(release, dtype=object)
    year = year.astype(float)

    # The real file's quirks, on three ordinary films.
    differs, from_date, unknown = rng.choice(np.setdiff1d(np.arange(N_ITEMS), saga), 3, replace=False)
    release[differs] = f"14-Feb-{int(year[differs]) + 1}"  # released the year after its title year
    titles[from_date] = titles[from_date].rsplit(" (", 1)[0]  # no year in the title
    titles[unknown], release[unknown], year[unknown] = "unknown", "", np.nan
    flags[unknown] = False
    flags[unknown, 0] = True
    genres = ["|".join(np.asarray(GENRES)[row]) for row in flags]
    frame = pd.DataFrame(
        {"item_id": [str(i) for i in range(1, N_ITEMS + 1)], "title": titles, "release_date": release,
         "genres": genres, "year": year}
    )  # fmt: skip
    return frame, flags, (differs, from_date, unknown)


def _standard_columns(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _titles(rng, n: int) -> np.ndarray:
    """`n` distinct made-up titles, some in latin-1, some with ML-100k's trailing ", The"."""
    names = [f"{a} {b}" for a in _ADJECTIVES for b in _NOUNS]
    names += [f"{b}, The" for b in _NOUNS] + [f"{b} in {p}" for b in _NOUNS for p in _PLACES]
    names = [n for n in names if "starfall" not in n.lower()]
    return np.array(rng.permutation(names)[:n], dtype=object)


# ---- users -------------------------------------------------------------------------------------
def _people(rng, users_f: np.ndarray, year_direction: np.ndarray) -> pd.DataFrame:
    directions = rng.normal(0.0, 1.0, (1 + len(OCCUPATIONS), FACTORS))
    taste_age = 0.7 * _standard(users_f @ year_direction) + 0.7 * rng.normal(0.0, 1.0, N_USERS)
    age = np.clip(np.rint(34 + 12 * taste_age), 7, 73)
    female = rng.random(N_USERS) < 1 / (1 + np.exp(0.9 - 1.5 * _standard(users_f @ directions[0])))
    prior = np.log(np.array(list(OCCUPATIONS.values()), float))
    logits = prior + _standard_columns(users_f @ directions[1:].T)
    student = list(OCCUPATIONS).index("student")
    logits[:, student] -= 0.15 * (age - 22).clip(0)  # students are young
    occupation = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    zips = [f"{z:05d}" for z in rng.integers(1000, 99999, N_USERS)]
    for u in rng.choice(N_USERS, 5, replace=False):  # a few Canadian postcodes, as in ML-100k
        zips[u] = f"T{u % 9}H{u % 7}N"
    return pd.DataFrame(
        {"user_id": [str(u) for u in range(1, N_USERS + 1)], "age": age.astype(int),
         "gender": np.where(female, "F", "M"), "occupation": np.asarray(list(OCCUPATIONS))[occupation], "zip": zips}
    )  # fmt: skip


# ---- ratings -----------------------------------------------------------------------------------
def _ratings(rng, users_f: np.ndarray, items_f: np.ndarray, popularity: np.ndarray) -> pd.DataFrame:
    counts = _activity(rng)
    logits = AFFINITY * (users_f @ items_f.T) + popularity  # 943 x 1,682: the fixture is small
    # Every film is rated at least once, as in ML-100k: each first goes to one user, drawn by the
    # same logits weighted by the users' activity; the rest of each user's films by Gumbel top-k.
    owner = (logits + np.log(counts)[:, None] + rng.gumbel(size=logits.shape)).argmax(axis=0)
    counts = _make_room(rng, counts, np.bincount(owner, minlength=N_USERS))
    keys = logits + rng.gumbel(size=logits.shape)
    keys[owner, np.arange(N_ITEMS)] = np.inf
    chosen = np.argsort(-keys, axis=1)
    taken = np.arange(N_ITEMS)[None, :] < counts[:, None]
    user, item = np.nonzero(taken)[0], chosen[taken]

    # Stars grow with taste and a little with popularity, in ML-100k's proportions.
    taste = np.einsum("nf,nf->n", users_f[user], items_f[item])
    score = _standard(taste) + 0.4 * _standard(popularity)[item] + rng.normal(0.0, 0.4, N_USERS)[user]
    score += rng.normal(0.0, 0.8, len(user))
    rating = 1 + np.searchsorted(np.quantile(score, np.cumsum(RATING_SHARE)[:-1]), score)

    # Each user's films in a random order, at increasing seconds, half of them in the same second
    # as the one before (users rate in bursts); a user's span fits within ML-100k's seven months.
    order = np.lexsort((rng.random(len(user)), user))
    user, item, rating = user[order], item[order], rating[order]
    gaps = np.where(rng.random(len(user)) < 0.5, 0.0, rng.lognormal(np.log(120.0), 2.5, len(user)))
    first = np.r_[True, user[1:] != user[:-1]]
    gaps[first] = 0.0
    elapsed = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], counts)
    window = _END - _START
    span = np.maximum(elapsed[np.r_[first[1:], True]], 1.0)  # the last offset of each user
    shrink = np.minimum(1.0, 0.9 * window / span)
    start = _START + rng.random(N_USERS) * (window - span * shrink)
    timestamp = np.floor(start[user] + elapsed * shrink[user]).astype(np.int64)

    rows = rng.permutation(len(user))  # u.data lists ratings in no particular order
    return pd.DataFrame(
        {"user_id": (user[rows] + 1).astype(str), "item_id": (item[rows] + 1).astype(str),
         "rating": rating[rows].astype(int), "timestamp": timestamp[rows]}
    )  # fmt: skip


def _activity(rng) -> np.ndarray:
    """Ratings per user: at least MIN_RATINGS, heavy-tailed, summing to N_RATINGS."""
    weight = rng.lognormal(0.0, 1.4, N_USERS)
    extra = N_RATINGS - MIN_RATINGS * N_USERS
    counts = MIN_RATINGS + np.floor(weight / weight.sum() * extra).astype(np.int64)
    counts = np.minimum(counts, MAX_RATINGS)
    return _make_room(rng, counts, np.zeros(N_USERS, np.int64))


def _make_room(rng, counts: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """`counts` raised to `floor`, then moved until they sum to N_RATINGS, the heavy users
    taking and giving the most."""
    low = np.maximum(floor, MIN_RATINGS)
    high = np.maximum(low, MAX_RATINGS)
    counts = np.clip(counts, low, high)
    while (diff := N_RATINGS - int(counts.sum())) != 0:
        room = counts < high if diff > 0 else counts > low
        weight = np.where(room, counts - MIN_RATINGS + 1.0, 0.0)
        step = rng.multinomial(abs(diff), weight / weight.sum())
        counts = np.clip(counts + np.sign(diff) * step, low, high)
    return counts


# ---- files -------------------------------------------------------------------------------------
def _write(folder: Path, ratings: pd.DataFrame, items: pd.DataFrame, flags: np.ndarray, users: pd.DataFrame) -> None:
    columns = ["user_id", "item_id", "rating", "timestamp"]
    ratings[columns].to_csv(folder / "u.data", sep="\t", header=False, index=False, lineterminator="\n")

    item_lines = []
    for row, flag in zip(items.itertuples(index=False), flags.astype(int).astype(str)):
        title = quote_plus(row.title, encoding="latin-1")
        url = f"http://us.imdb.com/M/title-exact?{title}" if row.release_date else ""  # none for "unknown"
        item_lines.append("|".join([row.item_id, row.title, row.release_date, "", url, *flag]))
    (folder / "u.item").write_text("\n".join(item_lines) + "\n", encoding="latin-1")

    columns = ["user_id", "age", "gender", "occupation", "zip"]
    users[columns].to_csv(folder / "u.user", sep="|", header=False, index=False, lineterminator="\n")
    (folder / "u.genre").write_text("".join(f"{g}|{j}\n" for j, g in enumerate(GENRES)) + "\n", encoding="ascii")
    (folder / "u.occupation").write_text("".join(f"{o}\n" for o in OCCUPATIONS), encoding="ascii")
