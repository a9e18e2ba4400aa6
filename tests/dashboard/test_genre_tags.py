"""Genres shown as tags: the stored "A|B|C" string as a list per row, drawn as coloured chips
with the dataset's whole genre list fixing the colours."""

from __future__ import annotations

import json

import pandas as pd

from dashboard.components.genre_tags import with_genre_tags
from tests.dashboard.pages import open_page


def test_genre_strings_become_lists_of_known_genres():
    frame = pd.DataFrame({"title": ["a", "b", "c", "d"],
                          "genres": ["Action|Sci-Fi", "(no genres listed)", None, "Drama|unknown"]})  # fmt: skip
    shown = with_genre_tags(frame, ["Action", "Drama", "Sci-Fi"])
    assert shown["genres"].tolist() == [["Action", "Sci-Fi"], [], [], ["Drama"]]
    assert frame["genres"].iloc[0] == "Action|Sci-Fi"  # the caller's frame is left as it was
    assert with_genre_tags(frame[["title"]], ["Action"]).columns.tolist() == ["title"]


def genre_config(table) -> dict:
    return json.loads(table.proto.columns)["genres"]


def test_data_page_items_show_genres_as_coloured_tags(app):
    from engine.data import load_dataset

    at = app().run()
    assert not at.exception
    table = at.dataframe[0]
    ds = load_dataset("movielens-dslabs")
    toy_story = table.value.set_index("item_id").loc["1", "genres"]
    assert list(toy_story) == ds.items.loc[ds.item_index("1"), "genres"].split("|")
    config = genre_config(table)
    # Every genre of the dataset, in one fixed order: a genre has the same colour in every table.
    assert [o["value"] for o in config["type_config"]["options"]] == ds.genre_names
    assert {o["color"] for o in config["type_config"]["options"]} == {"auto"} and config["disabled"]
    assert not config.get("hidden") and not json.loads(table.proto.columns).get("year", {}).get("hidden")


def test_similar_items_tables_and_caption_read_genres_as_words(trained_app):
    at = open_page(trained_app, "app_pages/similar.py", item="1")
    assert not at.exception
    item_line = next(c.value for c in at.caption if "item id 1" in c.value)  # under the item's title
    assert "Adventure, Animation, Children, Comedy, Fantasy" in item_line and "|" not in item_line
    for table in at.dataframe:
        assert all(not isinstance(g, str) for g in table.value["genres"])  # lists, not "A|B"
        assert genre_config(table)["type_config"]["options"]


def test_user_history_shows_genres_as_tags(trained_app):
    at = open_page(trained_app, "app_pages/users.py", user="1")
    assert not at.exception
    history = next(t for t in at.dataframe if "split" in t.value.columns)
    assert len(history.value) and all(not isinstance(g, str) for g in history.value["genres"])
    assert genre_config(history)["type_config"]["options"]
