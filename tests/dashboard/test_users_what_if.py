"""User explorer's "What if ...": edit a real user's history, the lists before and after, reset."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.dashboard import pages

PAGE = "app_pages/users.py"
DATASET = "movielens-dslabs"
USER = "15"


@pytest.fixture(scope="module")
def env(trained_dir):
    return pages.dataset_and_runs(trained_dir, DATASET)


def ids(env, *models):
    return ",".join(str(env["runs"][m]["id"]) for m in models)


def shown(at, name: str) -> list[tuple[str, str]]:
    """``(title, marks)`` per item of the "Before" or "After" list."""
    rows = []
    for node in at.get_by_key(f"users_whatif_{name}"):
        if getattr(node, "type", None) == "markdown":
            title, *marks = node.value.split("  \n")
            rows.append((re.sub(r"\\(.)", r"\1", re.sub(r"^\*\*\d+\.\*\* ", "", title)), marks[0] if marks else ""))
    return rows


def engine_what_if(env, model: str, remove=(), add=()):
    from engine.data import leave_last_out
    from engine.explore.views import held_out_items
    from engine.runs.store import load_checkpoint
    from engine.explore.what_if import what_if

    ds = env["ds"]
    m = load_checkpoint(env["runs"][model]["checkpoint"])[0]
    u = ds.user_index(USER)
    test = held_out_items(leave_last_out(ds).test, u)
    history = np.sort(m.seen_[u].indices.astype(np.int64))
    return what_if(m, ds, history, remove=remove, add=add, test_item=int(test[0]), k=10), history


def test_removing_items_shows_both_lists_marked(trained_app, env):
    at = pages.open_page(trained_app, PAGE, user=USER, models=ids(env, "als"))
    assert any("The lists appear once you remove or add" in c.value for c in at.caption)
    with pytest.raises(KeyError):
        at.get_by_key("users_whatif_after")
    _, history = engine_what_if(env, "als")
    remove = [int(i) for i in history[:8]]
    at.multiselect(key="users_whatif_remove").set_value(remove).run()
    assert not at.exception
    expected, _ = engine_what_if(env, "als", remove=remove)
    before, after = shown(at, "before"), shown(at, "after")
    assert [t for t, _ in before] == expected.before["title"].tolist()
    assert [t for t, _ in after] == expected.after["title"].tolist()
    assert ["left the list" in m for _, m in before] == (expected.before["change"] == "left").tolist()
    assert ["new in the list" in m for _, m in after] == (expected.after["change"] == "new").tolist()
    ranks = [c.value for c in at.caption if c.value.startswith("Held-out test item: rank")]
    assert ranks == [f"Held-out test item: rank {expected.test_rank_before}.",
                     f"Held-out test item: rank {expected.test_rank_after}."]  # fmt: skip
    # Reset: back to the real user, no lists.
    at.button(key="users_whatif_reset").click().run()
    assert at.multiselect(key="users_whatif_remove").value == []
    with pytest.raises(KeyError):
        at.get_by_key("users_whatif_after")


def test_adding_items_is_offered_outside_the_history_only(trained_app, env):
    at = pages.open_page(trained_app, PAGE, user=USER, models=ids(env, "als"))
    box = at.multiselect(key="users_whatif_add")
    ds = env["ds"]
    u = ds.user_index(USER)
    seen = {ds.title(i) for i in ds.interactions.loc[ds.interactions["user_idx"] == u, "item_idx"]}
    assert not seen & set(box.options)
    from engine.explore.views import items_by_popularity

    order = items_by_popularity(ds)
    first = next(n for n, i in enumerate(order) if ds.title(i) not in seen)  # most popular film not seen
    box.set_value([first]).run()
    assert not at.exception and len(shown(at, "after")) == 10
    expected, _ = engine_what_if(env, "als", add=[int(order[first])])
    assert [t for t, _ in shown(at, "after")] == expected.after["title"].tolist()


def test_models_without_fold_in_say_so(trained_app, env, monkeypatch):
    from engine.models.popularity import Popularity

    monkeypatch.setattr(Popularity, "has_fold_in", False)  # every registered model folds in now
    at = pages.open_page(trained_app, PAGE, user=USER, models=ids(env, "popularity"))
    assert any("None of the chosen models can take in an edited history" in c.value for c in at.caption)
