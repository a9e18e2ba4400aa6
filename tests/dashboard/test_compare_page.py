"""Compare: one row per run with its recorded metrics, charts, and the users two runs disagree on."""

from __future__ import annotations

from urllib.parse import parse_qs

import numpy as np
import pytest

from tests.dashboard import pages

PAGE = "app_pages/compare.py"
DATASET = "movielens-dslabs"


@pytest.fixture(scope="module")
def env(trained_dir):
    return pages.dataset_and_runs(trained_dir, DATASET)


def open_page(make, **query):
    return pages.open_page(make, PAGE, **query)


figures = pages.figures


def values(array) -> list:
    return pages.plotly_array(array).tolist()


def bars(trace) -> dict:
    """{run: value} of a horizontal bar trace."""
    assert trace["orientation"] == "h"
    return dict(zip(values(trace["y"]), values(trace["x"])))


def rows_top_down(figure) -> list[str]:
    """The runs of a horizontal bar chart as they read from the top (Plotly lists them from
    the bottom)."""
    return list(figure["layout"]["yaxis"]["categoryarray"])[::-1]


def test_table_has_one_row_per_run_with_recorded_metrics(trained_app, env):
    at = open_page(trained_app)
    table = at.dataframe[0].value
    runs = env["runs"]
    assert sorted(table["model"]) == sorted(runs)
    assert len(table) == len(runs)
    for _, row in table.iterrows():
        run = runs[row["model"]]
        assert row["run"] == f"{row['model']} #{run['id']}"
        assert row["ndcg@10"] == pytest.approx(run["metrics"]["ndcg@10"])
        assert row["hr@10"] == pytest.approx(run["metrics"]["hr@10"])
        assert row["fit_seconds"] == pytest.approx(run["fit_seconds"])
    assert list(table.columns[3:5]) == ["ndcg@10", "hr@10"]  # the headline metrics first


def test_bar_charts_of_metrics_and_fit_time(trained_app, env):
    at = open_page(trained_app, metrics="ndcg@10")
    assert at.multiselect(key="compare_metrics").value == ["ndcg@10"]
    metric_chart, fit_chart = figures(at)[:2]
    assert [b["name"] for b in metric_chart["data"]] == ["ndcg@10"]
    runs = {f"{m} #{r['id']}": r for m, r in env["runs"].items()}
    expected = {k: r["metrics"]["ndcg@10"] for k, r in runs.items()}
    assert bars(metric_chart["data"][0]) == pytest.approx({**expected, "random order": chance(env)["ndcg@10"]})
    assert bars(fit_chart["data"][0]) == pytest.approx({k: r["fit_seconds"] for k, r in runs.items()})
    # Best NDCG@10 on top, chance (no fit time) at the bottom, and the fit times in the same row order.
    best_first = sorted(runs, key=lambda k: -runs[k]["metrics"]["ndcg@10"])
    assert rows_top_down(metric_chart) == [*best_first, "random order"]
    assert rows_top_down(fit_chart) == best_first
    at.multiselect(key="compare_metrics").select("hr@10").run()
    assert at.query_params["metrics"] == "ndcg@10,hr@10"
    assert [b["name"] for b in figures(at)[0]["data"]] == ["hr@10", "ndcg@10"]  # the first drawn last: on top


def chance(env) -> dict:
    """What a random order scores on the split the runs were evaluated on, from the engine."""
    from engine.chance import chance_metrics
    from engine.runs.experiment import make_splits

    splits = make_splits(env["ds"])
    return chance_metrics(splits.train, splits.test, exclude=[splits.val])


def test_chance_is_a_grey_row_under_the_runs_and_a_sentence_in_users(trained_app, env):
    at = open_page(trained_app, metrics="hr@10,auc")
    metric_chart = figures(at)[0]
    floor = chance(env)
    # Every metric's bar of the random row is grey; the runs keep their metric's colour.
    for trace in metric_chart["data"]:
        colours = dict(zip(values(trace["y"]), values(trace["marker"]["color"])))
        assert colours.pop("random order") == "#8a8a8a"
        assert set(colours.values()) != {"#8a8a8a"}
        assert bars(trace)["random order"] == pytest.approx(floor[trace["name"]])
    assert floor["auc"] == 0.5 and 0 < floor["hr@10"] < 0.01  # thousands of candidates: far below a guess of 0.1

    runs = env["runs"]
    best = max(runs, key=lambda m: runs[m]["metrics"]["hr@10"])
    found = runs[best]["metrics"]["hr@10"]
    words = [pages.without_links(m.value) for m in at.markdown if m.value.startswith("**In words:**")]
    assert len(words) == 1
    assert f"{best} #{runs[best]['id']}, the best here, finds the item a user chose next in its top 10 for " \
        f"**{found:.1%}** of users (about 1 in {round(1 / found):,})" in words[0]
    assert f"(1 in {round(1 / floor['hr@10']):,}): {best} #{runs[best]['id']} does {found / floor['hr@10']:,.0f} times " \
        "better than chance" in words[0]
    popularity = runs["popularity"]
    assert (f"popularity #{popularity['id']}, which gives everyone the same most chosen items, finds it for "
            f"{popularity['metrics']['hr@10']:.1%}") in words[0]


def test_users_two_runs_disagree_on_with_links(trained_app, env):
    from engine.explore.agreement import topk_overlap
    from engine.runs.store import load_checkpoint

    ds = env["ds"]
    als, bpr = env["runs"]["als"], env["runs"]["bpr"]
    at = open_page(trained_app, a=str(als["id"]), b=str(bpr["id"]))
    assert at.selectbox(key="picker_a").value == str(als["id"])
    assert at.selectbox(key="picker_b").value == str(bpr["id"])

    links = [link for link in at.get("page_link") if link.proto.page == "users"]
    assert len(links) == 10
    users, queries = [], []
    for link in links:
        query = {k: v[0] for k, v in parse_qs(link.proto.query_string).items()}
        assert query["dataset"] == DATASET and query["models"] == f"{als['id']},{bpr['id']}"
        assert link.value == f"User {query['user']}"
        users.append(ds.user_index(query["user"]))
        queries.append(query)

    # The listed users are those with the least overlap, computed here over every user.
    model_a = load_checkpoint(als["checkpoint"])[0]
    model_b = load_checkpoint(bpr["checkpoint"])[0]
    overlap = topk_overlap(model_a, model_b, np.arange(ds.n_users), 10)
    assert np.sort(overlap)[:10].tolist() == pytest.approx(overlap[users].tolist())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mean top-10 overlap"] == f"{overlap.mean():.0%}"

    # Beside each user, the first two titles only A recommends, then only B's (no pictures here).
    top_a, _ = model_a.recommend([users[0]], 10)
    top_b, _ = model_b.recommend([users[0]], 10)
    only_a = [i for i in top_a[0] if i not in set(top_b[0])][:2]
    only_b = [i for i in top_b[0] if i not in set(top_a[0])][:2]
    texts = [m.value for m in at.markdown if m.value.startswith(":small[**only")]
    assert texts[:2] == [f":small[**only A**: {'; '.join(ds.title(i) for i in only_a)}]",
                         f":small[**only B**: {'; '.join(ds.title(i) for i in only_b)}]"]

    # A link's query opens that user with both runs in the User explorer.
    user_at = trained_app(**queries[0]).run()
    user_at.switch_page("app_pages/users.py").run()
    assert not user_at.exception
    assert [h.value for h in user_at.subheader] == [f"User {queries[0]['user']}"]
    assert len(user_at.dataframe) == 1  # the history, and the two runs' lists:
    assert [user_at.get_by_key(f"users_list_{n}").type for n in (0, 1)] == ["flex_container"] * 2


def test_says_which_run_finds_each_users_next_item(trained_app, env):
    from engine.runs.experiment import make_splits
    from engine.runs.store import load_checkpoint

    ds = env["ds"]
    als, bpr = env["runs"]["als"], env["runs"]["bpr"]
    at = open_page(trained_app, a=str(als["id"]), b=str(bpr["id"]))
    test = make_splits(ds, {}).test
    found = {}
    for name, run in (("A", als), ("B", bpr)):
        model = load_checkpoint(run["checkpoint"])[0]
        top, _ = model.recommend(np.arange(ds.n_users), 10)
        found[name] = np.array([test.item_idx[test.user_idx == u] in top[u] for u in range(ds.n_users)])
    only_a, only_b = found["A"] & ~found["B"], found["B"] & ~found["A"]
    assert 0 < only_a.sum() + only_b.sum() < ds.n_users  # the runs differ, so the figures mean something
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Only A finds the next item"] == f"{only_a.sum():,} users"
    assert metrics["Only B finds the next item"] == f"{only_b.sum():,} users"
    both, neither = (found["A"] & found["B"]).sum(), (~found["A"] & ~found["B"]).sum()
    assert any(f"Both runs find it for {both:,} users, neither for {neither:,}" in c.value for c in at.caption)

    # Each listed user is marked with the run that found their next item, if one did.
    links = [link for link in at.get("page_link") if link.proto.page == "users"]
    listed = [ds.user_index(parse_qs(link.proto.query_string)["user"][0]) for link in links]
    marks = [m.value for m in at.markdown if m.value.split("  \n")[0].endswith(" interactions")]
    assert len(marks) == len(listed) == 10
    for user, mark in zip(listed, marks):
        expected = {(True, False): "[A found it]", (False, True): "[B found it]", (True, True): "[both found it]"}
        want = expected.get((bool(found["A"][user]), bool(found["B"][user])))
        assert (want in mark) if want else ("badge" not in mark), (user, mark)


def test_what_each_run_recommends_popular_share_and_genres_against_what_users_chose_next(trained_app, env):
    from engine.runs.experiment import make_splits
    from engine.runs.store import load_checkpoint

    ds = env["ds"]
    pop, als = env["runs"]["popularity"], env["runs"]["als"]
    at = open_page(trained_app, a=str(pop["id"]), b=str(als["id"]))
    assert not at.exception, at.exception
    # Recomputed here: every user's top 10 of each run, and the held-out items.
    test = make_splits(ds, {}).test
    listed = {}
    for name, run in (("A", pop), ("B", als)):
        top, _ = load_checkpoint(run["checkpoint"])[0].recommend(np.arange(ds.n_users), 10)
        listed[name] = top[top >= 0]
    n_popular = int(np.ceil(0.01 * ds.n_items))
    popular = np.argsort(-ds.item_popularity(), kind="stable")[:n_popular]
    shares = {name: np.isin(items, popular).mean() for name, items in listed.items()}
    shares["next"] = np.isin(test.item_idx, popular).mean()
    assert any(f"comes from the {n_popular:,} most popular items (1% of the catalogue)" in m.value for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"A: popularity #{pop['id']}"] == f"{shares['A']:.0%}"
    assert metrics[f"B: als #{als['id']}"] == f"{shares['B']:.0%}"
    assert metrics["the items users chose next"] == f"{shares['next']:.0%}"
    assert shares["A"] > shares["B"] > shares["next"]  # the lesson: popularity most of all, users least
    # The genre chart: the 8 genres users chose most, each run's share beside theirs.
    mix = next(f for f in figures(at) if any(t["name"] == "what users chose next" for t in f["data"]))
    traces = {t["name"]: bars(t) for t in mix["data"]}
    genre_of = ds.genre_matrix() > 0
    drama = ds.genre_names.index("Drama")
    assert traces["what users chose next"]["Drama"] == pytest.approx(genre_of[test.item_idx, drama].mean())
    assert traces[f"B: als #{als['id']}"]["Drama"] == pytest.approx(genre_of[listed["B"], drama].mean())
    next_shares = traces["what users chose next"]
    assert len(next_shares) == 8 and rows_top_down(mix) == sorted(next_shares, key=next_shares.get, reverse=True)


def test_default_pair_is_two_different_runs_and_same_run_is_refused(trained_app, env):
    at = open_page(trained_app)
    a, b = at.selectbox(key="picker_a").value, at.selectbox(key="picker_b").value
    assert a != b and at.query_params["a"] == a and at.query_params["b"] == b
    # The two best models by NDCG@10: the comparison a first look is most likely to learn from.
    best = sorted(env["runs"].values(), key=lambda r: r["metrics"]["ndcg@10"], reverse=True)
    assert [a, b] == [str(best[0]["id"]), str(best[1]["id"])]
    at.selectbox(key="picker_b").set_value(a).run()
    assert not at.exception
    assert any("two different runs" in i.value for i in at.info)
    assert not [link for link in at.get("page_link") if link.proto.page == "users"]


def test_no_runs_is_an_info_with_the_demo_button(app):
    at = open_page(app)
    assert len(at.info) == 1 and "Prepare the demo" in at.info[0].value
    assert at.button(key="empty_page_prepare").label == "Prepare the demo"  # the button itself, here
    assert len(at.dataframe) == 0 and not at.get("plotly_chart")


def test_one_run_has_its_metrics_but_no_pair_to_compare(app, data_dir):
    from engine.runs.experiment import train_and_evaluate

    run = train_and_evaluate(DATASET, "popularity", {}, data_dir=data_dir)
    at = open_page(app)
    table = at.dataframe[0].value
    assert table["run"].tolist() == [f"popularity #{run['run_id']}"]
    assert table["ndcg@10"].tolist() == pytest.approx([run["metrics"]["ndcg@10"]])
    assert any("two runs" in i.value for i in at.info)
    assert [link.proto.page for link in at.main.get("page_link")] == ["models"]


def test_runs_over_seeds_get_a_mean_and_sd_table(app, data_dir):
    from engine.runs.store import RunsDB

    db = RunsDB(data_dir / "runs.sqlite")
    for seed, ndcg in enumerate((0.05, 0.07, 0.06)):
        db.record(model="bpr", dataset=DATASET, params={"factors": 16, "random_state": seed},
                  metrics={"ndcg@10": ndcg, "hr@10": 2 * ndcg, "users": 671}, fit_seconds=1.0 + seed)
    db.record(model="als", dataset=DATASET, params={"random_state": 0}, metrics={"ndcg@10": 0.1}, fit_seconds=0.5)
    at = open_page(app)
    assert [s.value for s in at.subheader][:2] == ["Metrics", "Over seeds"]
    seeded = at.dataframe[1].value  # after the runs table
    assert seeded["setting"].tolist() == ["bpr[factors=16]"]  # als has one seed only
    row = seeded.iloc[0]
    assert (row["runs"], row["seeds"]) == (3, "0, 1, 2")
    assert row["ndcg@10"] == pytest.approx(0.06) and row["ndcg@10 sd"] == pytest.approx(0.01)
    assert row["hr@10"] == pytest.approx(0.12) and row["fit_seconds"] == pytest.approx(2.0)


def test_no_seed_table_without_repeated_seeds(trained_app):
    at = open_page(trained_app)
    assert all(s.value != "Over seeds" for s in at.subheader)
    assert len(at.dataframe) == 1  # the runs table only


def test_a_catalogue_without_genres_gets_the_popular_share_and_no_genre_chart(app, data_dir):
    from engine.runs.experiment import train_and_evaluate

    for model in ("popularity", "itemknn"):
        train_and_evaluate("synthetic", model, {}, data_dir=data_dir)
    at = open_page(app, dataset="synthetic")
    assert any("most popular items" in m.value for m in at.markdown)
    assert "the items users chose next" in [m.label for m in at.metric]
    assert not [f for f in figures(at) if any(t.get("name") == "what users chose next" for t in f["data"])]


def test_charts_name_runs_briefly_while_the_table_marks_quick_runs(app, data_dir):
    from engine.runs.experiment import train_and_evaluate

    ids = [train_and_evaluate(DATASET, model, {}, data_dir=data_dir, quick=True)["run_id"]
           for model in ("popularity", "itemknn")]
    at = open_page(app)
    assert sorted(at.dataframe[0].value["run"]) == sorted(
        [f"popularity #{ids[0]} (quick run)", f"itemknn #{ids[1]} (quick run)"])
    metric_chart, fit_chart = figures(at)[:2]
    briefly = sorted([f"popularity #{ids[0]}", f"itemknn #{ids[1]}"])
    assert sorted(rows_top_down(fit_chart)) == briefly
    assert sorted(rows_top_down(metric_chart)) == sorted([*briefly, "random order"])
