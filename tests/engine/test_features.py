"""Feature tables: known values on ML-100k (generated, and real where given), derived features
from train only, encoding round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data import from_frames, leave_last_out
from engine.errors import ParameterError
from engine.data.features import FeatureSpace, age_bucket

GENRES = ("Action", "Comedy", "Drama")


def small_frames(seed: int = 0):
    """30 users x 20 items with genres and years, no demographics; 8 ratings per user."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(30):
        for t, item in enumerate(rng.choice(20, 8, replace=False)):
            rows.append((str(user), str(item), float(rng.integers(1, 6)), user * 100 + t))
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {
            "item_id": [str(i) for i in range(20)],
            "title": [f"Movie {i}" for i in range(20)],
            "genres": ["|".join(g for j, g in enumerate(GENRES) if (i >> j) & 1) for i in range(20)],
            "year": [1980.0 + i if i != 7 else np.nan for i in range(20)],
        }
    )
    return ratings, items


def small_dataset(ratings=None):
    default, items = small_frames()
    return from_frames("small", default if ratings is None else ratings, items)


def test_age_buckets():
    assert [age_bucket(a) for a in (7, 17, 18, 24, 25, 34, 35, 45, 49, 50, 55, 56, 73)] == [
        "under 18", "under 18", "18-24", "18-24", "25-34", "25-34", "35-44",
        "45-49", "45-49", "50-55", "50-55", "56+", "56+",
    ]  # fmt: skip
    assert age_bucket(np.nan) == "unknown"


def test_ml100k_known_user_and_item(ml100k, ml100k_splits, ml100k_fixture):
    space = FeatureSpace.from_split(ml100k_splits.train)
    assert space.mode == "demographics"
    assert [f.name for f in space.features] == ["gender", "age", "occupation", "genres", "year"]
    assert len(space.feature("genres").columns) == 19  # ML-100k's 19 genres, "unknown" included
    person = ml100k_fixture.users.set_index("user_id").loc["1"]  # as written in u.user and u.item
    film = ml100k_fixture.items.set_index("item_id").loc["50"]
    u, i = ml100k.user_index("1"), ml100k.item_index("50")
    row = space.frame([u], [i]).iloc[0]
    assert (row["user_idx"], row["item_idx"]) == (u, i)
    expected = (person["gender"], age_bucket(person["age"]), person["occupation"])
    assert (row["gender"], row["age"], row["occupation"]) == expected
    genres = {c.split(":", 1)[1] for c in space.feature("genres").columns if row[c] == 1}
    assert genres == set(film["genres"].split("|"))
    assert row["year"] == film["year"]
    # The encoded input: one-hot of the gender within gender, of the age bucket within age.
    x = space.user_matrix[u]
    genders, ages = space.feature("gender").levels, space.feature("age").levels
    assert x[: len(genders)].tolist() == [float(g == person["gender"]) for g in genders]
    assert ages[int(np.argmax(x[len(genders) : len(genders) + len(ages)]))] == age_bucket(person["age"])


def test_real_ml100k_known_user_and_item(real_ml100k):
    space = FeatureSpace.from_split(leave_last_out(real_ml100k).train)
    u, i = real_ml100k.user_index("1"), real_ml100k.item_index("50")
    row = space.frame([u], [i]).iloc[0]
    assert (row["gender"], row["age"], row["occupation"]) == ("M", "18-24", "technician")  # age 24
    genres = {c.split(":", 1)[1] for c in space.feature("genres").columns if row[c] == 1}
    assert genres == {"Action", "Adventure", "Romance", "Sci-Fi", "War"}  # Star Wars (1977)
    assert row["year"] == 1977
    x = space.user_matrix[u]
    assert x[: len(space.feature("gender").levels)].tolist() == [0.0, 1.0]  # levels F, M
    assert space.feature("age").levels[int(np.argmax(x[2:9]))] == "18-24"


def test_derived_features_on_a_dataset_without_demographics():
    dataset = small_dataset()
    splits = leave_last_out(dataset)
    space = FeatureSpace.from_split(splits.train)
    assert space.mode == "derived"
    kinds = {f.name: f.kind for f in space.features}
    assert kinds == {
        "activity": "numeric", "mean_rating": "numeric", "genre_affinity": "numeric",
        "genres": "multi-hot", "year": "numeric", "popularity": "numeric",
    }  # fmt: skip
    train = splits.train
    frame = space.frame(np.arange(30), np.zeros(30, int))
    # Each user keeps 6 of 8 ratings in train (val and test are the last two).
    assert (frame["activity"] == 6).all()
    u = 4
    mask = train.user_idx == u
    assert frame["mean_rating"][u] == pytest.approx(train.rating[mask].mean())
    comedy = np.array(["Comedy" in g for g in dataset.items["genres"]])
    assert frame["affinity:Comedy"][u] == pytest.approx(comedy[train.item_idx[mask]].mean())
    items = space.frame(np.zeros(20, int), np.arange(20))
    assert (items["popularity"] == np.bincount(train.item_idx, minlength=20)).all()
    assert np.isnan(items["year"][dataset.item_index("7")])
    with pytest.raises(ParameterError, match="demographics"):
        FeatureSpace.from_split(train, "demographics")
    with pytest.raises(ParameterError, match="auto"):
        FeatureSpace.from_split(train, "everything")


def test_derived_features_use_train_only():
    ratings, _ = small_frames()
    base = FeatureSpace.from_split(leave_last_out(small_dataset(ratings)).train)

    # User 3's test interaction is their latest: give it another item and rating.
    last = ratings.index[ratings["user_id"] == "3"][-1]
    changed_test = ratings.copy()
    seen = set(ratings.loc[ratings["user_id"] == "3", "item_id"])
    changed_test.loc[last, ["item_id", "rating"]] = [next(str(i) for i in range(20) if str(i) not in seen), 1.0]
    splits = leave_last_out(small_dataset(changed_test))
    assert splits.test.item_idx[splits.test.user_idx == 3][0] == int(changed_test.loc[last, "item_id"])
    after = FeatureSpace.from_split(splits.train)
    np.testing.assert_array_equal(after.user_values, base.user_values)
    np.testing.assert_array_equal(after.item_values, base.item_values)

    # The same change on a train interaction (the user's first) does change them.
    first = ratings.index[ratings["user_id"] == "3"][0]
    changed_train = ratings.copy()
    changed_train.loc[first, "rating"] = 6.0 - ratings.loc[first, "rating"] + 0.5
    moved = FeatureSpace.from_split(leave_last_out(small_dataset(changed_train)).train)
    assert not np.array_equal(moved.user_values, base.user_values)


def test_frame_encodes_back_to_the_tables(ml100k_splits):
    space = FeatureSpace.from_split(ml100k_splits.train, "all")
    users, items = np.array([0, 5, 942, 5]), np.array([49, 0, 1681, 266])
    frame = space.frame(users, items)
    u, i, ux, ix = space.encode(frame)
    np.testing.assert_array_equal(u, users)
    np.testing.assert_array_equal(i, items)
    np.testing.assert_array_equal(ux, space.user_matrix[users])
    np.testing.assert_array_equal(ix, space.item_matrix[items])
    # Categorical columns as integer codes encode the same, and decode back to the strings.
    codes = space.codes_frame(frame)
    assert codes["occupation"].dtype.kind == "i"
    np.testing.assert_array_equal(space.encode(codes)[2], ux)
    pd.testing.assert_frame_equal(space.decode_frame(codes), frame)
    # A perturbed value changes the input; an unknown one is refused with the choices.
    perturbed = frame.copy()
    perturbed.loc[0, "gender"] = "M" if frame.loc[0, "gender"] == "F" else "F"
    assert not np.array_equal(space.encode(perturbed)[2][0], ux[0])
    perturbed.loc[0, "gender"] = "X"
    with pytest.raises(ParameterError, match="gender.*'X'.*valid: F, M"):
        space.encode(perturbed)
    with pytest.raises(ParameterError, match="lacks columns"):
        space.encode(frame.drop(columns=["year"]))


def test_state_round_trip(ml100k_splits):
    space = FeatureSpace.from_split(ml100k_splits.train)
    again = FeatureSpace.from_state(*space.to_state())
    assert again.features == space.features
    np.testing.assert_array_equal(again.user_matrix, space.user_matrix)
    np.testing.assert_array_equal(again.item_matrix, space.item_matrix)
