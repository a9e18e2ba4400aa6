"""Item pictures on every page of a dataset with ``+images:DIR``, and the sidebar that attaches them.

The pictures are made by `tests.poster_folder`: posters of mixed sizes and formats, plus a
missing, a corrupt and a truncated one, a text file and a subfolder. Nothing is downloaded.
"""

from __future__ import annotations

import pytest

from tests import poster_folder
from tests.dashboard import pages
from tests.dashboard.conftest import app_maker

USERS, EXTRA, PER_USER = 40, 52, 16  # 60 items, 16 rated by each user: lists of 10 with room to differ
TRAINED = {
    "popularity": {},
    "als": {"factors": 8, "epochs": 3},
    "bpr": {"factors": 8, "epochs": 3},
    "acf": {"factors": 8, "attention_dim": 8, "components_dim": 8, "max_profile": 4, "epochs": 2, "eval_every": 1,
            "patience": 0, "device": "cpu", "features": "patches"},
}  # fmt: skip


@pytest.fixture(scope="module")
def pictures_dir(tmp_path_factory):
    """A data folder with a ratings CSV, a poster folder and runs trained on the two together."""
    import warnings

    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("pictures")
    ratings = poster_folder.write_ratings(folder / "ratings.csv", users=USERS, extra=EXTRA, per_user=PER_USER)
    posters = poster_folder.write_posters(folder / "posters", extra=EXTRA)
    spec = f"csv:{ratings}+images:{posters}"
    runs = {}
    mp = pytest.MonkeyPatch()
    mp.setenv("RECSYS_DATA_DIR", str(folder))  # ACF's component features are cached under it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the folder's problems, on purpose
            for name, params in TRAINED.items():
                runs[name] = train_and_evaluate(spec, name, params, data_dir=folder)["run_id"]
    finally:
        mp.undo()
    return {"folder": folder, "ratings": ratings, "posters": posters, "spec": spec, "runs": runs}


@pytest.fixture
def make(pictures_dir, monkeypatch):
    return app_maker(pictures_dir["folder"], monkeypatch, dataset=pictures_dir["spec"])


@pytest.fixture(scope="module")
def ds(pictures_dir):
    import warnings

    from engine.data import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset(pictures_dir["spec"])


def uris(nodes) -> list[str]:
    return [url for node in nodes if getattr(node, "type", None) == "image" for url in node.value]


def placeholder() -> str:
    from engine.data.images import placeholder_uri

    return placeholder_uri()


def is_picture(uri: str) -> bool:
    return uri.startswith("data:image/jpeg;base64,")


# ---- the sidebar ----------------------------------------------------------------------------
def test_the_sidebar_attaches_and_removes_a_folder(pictures_dir, monkeypatch):
    base = f"csv:{pictures_dir['ratings']}"
    at = app_maker(pictures_dir["folder"], monkeypatch, dataset=base)().run()
    assert not at.exception and at.text_input(key="sidebar_images").value == ""
    at.text_input(key="sidebar_images").input(str(pictures_dir["posters"])).run()
    at.button(key="sidebar_images_attach").click().run()
    assert not at.exception and at.query_params["dataset"] == pictures_dir["spec"]
    # The folder's problems, in one line, under the box.
    captions = [c.value for c in at.sidebar.caption]
    line = next(c for c in captions if "no usable picture" in c)
    assert "3 of 60 items have no usable picture" in line and "1 missing (6)" in line and "unreadable (7, 8)" in line
    assert at.text_input(key="sidebar_images").value == str(pictures_dir["posters"])
    at.button(key="sidebar_images_remove").click().run()
    assert not at.exception and at.query_params["dataset"] == base
    assert at.text_input(key="sidebar_images").value == ""


@pytest.mark.parametrize("folder", ["/proc", "../../etc", "/no/such/folder"])
def test_a_folder_outside_the_data_folder_is_refused_in_one_line(pictures_dir, monkeypatch, folder):
    base = f"csv:{pictures_dir['ratings']}"
    at = app_maker(pictures_dir["folder"], monkeypatch, dataset=base)().run()
    at.text_input(key="sidebar_images").input(folder).run()
    at.button(key="sidebar_images_attach").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and all("\n" not in e for e in errors)
    assert any("images: this dashboard reads pictures only from the data folder" in e for e in errors)


def test_a_hostile_picture_folder_in_the_url_is_one_line(pictures_dir, monkeypatch):
    at = app_maker(pictures_dir["folder"], monkeypatch)(dataset="movielens-dslabs+images:/proc/self").run()
    assert not at.exception
    assert [e.value for e in at.main.error] == [
        "images: this dashboard reads pictures only from the data folder, its uploads and the folders the"
        " operator allowed; that path is not one of them"
    ]


# ---- the pages ------------------------------------------------------------------------------
def test_user_explorer_shows_pictures_in_the_history_and_every_list(make, pictures_dir, ds):
    runs = pictures_dir["runs"]
    inter = ds.interactions
    broken = [ds.item_index(i) for i in poster_folder.MISSING + poster_folder.CORRUPT]
    user = ds.user_ids[inter.loc[inter["item_idx"].isin(broken), "user_idx"].min()]  # one with a broken picture
    at = pages.open_page(make, "app_pages/users.py", user=user, models=f"{runs['als']},{runs['bpr']}")
    history = at.dataframe[0].value
    posters = dict(zip(history["title"], history["poster"]))
    assert len(posters) == PER_USER
    for title, uri in posters.items():
        item = ds.find_item(title)
        assert uri == placeholder() if ds.items["image"].iat[item] == "" else is_picture(uri)
    assert any(uri == placeholder() for uri in posters.values())  # the missing and broken ones
    for n in range(2):
        assert len(uris(at.get_by_key(f"users_list_{n}"))) == 10


def test_similar_items_shows_the_item_and_its_neighbours(make, pictures_dir):
    at = pages.open_page(make, "app_pages/similar.py", item="1", models=str(pictures_dir["runs"]["als"]))
    assert is_picture(uris(at.main)[0])  # the item itself, above its neighbours
    beside = uris(at.get_by_key("similar_list_0"))
    assert len(beside) == 10 and all(is_picture(u) or u == placeholder() for u in beside)


def test_be_the_user_shows_the_picks_and_the_lists(make, pictures_dir):
    at = pages.open_page(make, "app_pages/be_user.py", picks="1,2,6", models=str(pictures_dir["runs"]["als"]))
    pictures = uris(at.main)
    assert is_picture(pictures[0]) and is_picture(pictures[1]) and pictures[2] == placeholder()  # item 6 has none
    assert len(uris(at.get_by_key("be_user_list_0"))) == 10


def test_embeddings_shows_a_gallery_of_the_selected_items(make, pictures_dir, ds, tmp_path, monkeypatch):
    from dashboard.services import embeddings

    monkeypatch.setattr(embeddings, "projection_cache_dir", lambda: tmp_path / "projections")
    at = pages.open_page(make, "app_pages/embeddings.py", models=str(pictures_dir["runs"]["als"]))
    with pytest.raises(KeyError):
        at.get_by_key("emb_gallery")  # nothing selected yet
    chosen = [ds.item_index("1"), ds.item_index("6")]
    at.multiselect(key="emb_inspect_items").set_value(chosen).run()
    assert not at.exception
    [gallery] = [n for n in at.get_by_key("emb_gallery") if getattr(n, "type", None) == "image"]
    assert is_picture(gallery.value[0]) and gallery.value[1] == placeholder()
    assert gallery.captions[0].startswith(ds.title(chosen[0]))


def test_compare_shows_what_only_each_run_recommends(make, pictures_dir, ds):
    from engine.explore.agreement import list_differences
    from engine.runs.store import RunsDB, load_checkpoint

    runs = pictures_dir["runs"]
    at = pages.open_page(make, "app_pages/compare.py", a=str(runs["als"]), b=str(runs["popularity"]))
    db = RunsDB(pictures_dir["folder"] / "runs.sqlite")
    models = [load_checkpoint(db.get(runs[m])["checkpoint"])[0] for m in ("als", "popularity")]
    first_user = int(ds.user_index(at.main.get("page_link")[0].proto.query_string.split("user=")[1].split("&")[0]))
    only_a, only_b = list_differences(*models, [first_user], 10)[0]
    shown = uris(at.get_by_key("compare_only_A_0"))
    assert len(shown) == min(4, len(only_a)) > 0
    from engine.data.images import thumbnail_uri

    assert shown == [thumbnail_uri(ds, int(i), pictures_dir["folder"] / "cache" / "thumbnails") for i in only_a[:4]]
    assert len(uris(at.get_by_key("compare_only_B_0"))) == min(4, len(only_b))


def test_visual_attention_on_real_pictures_without_ground_truth(make, pictures_dir, ds):
    at = pages.open_page(make, "app_pages/attention.py", models=str(pictures_dir["runs"]["acf"]))
    # No ground-truth view, the attention overlay on the pictures.
    assert at.radio(key="att_view").options == ["Image", "Attention overlay"]
    profile_and_recs = [url for node in at.image for url in node.value]
    assert len(profile_and_recs) == 4 + 10
    assert len(at.main.get("progress")) == 4  # one alpha bar per profile item
    [info] = [i.value for i in at.info if "ground truth" in i.value]
    assert info.startswith("Fidelity needs ground truth")
    [link] = [p for p in at.main.get("page_link") if "visual-synthetic" in p.proto.label]
    assert link.proto.query_string == "dataset=visual-synthetic"


def test_visual_attention_without_pictures_points_to_the_item_pictures_box(app):
    at = pages.open_page(app, "app_pages/attention.py")
    assert "attach a folder of item pictures in the sidebar's **Item pictures** box" in at.info[0].value


def test_data_page_item_table_shows_pictures_for_its_first_rows(make, ds):
    from dashboard.services.explorer import TABLE_POSTERS

    at = make().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.columns[0] == "poster"
    for item_id, uri in zip(table["item_id"][:TABLE_POSTERS], table["poster"][:TABLE_POSTERS]):
        item = ds.item_index(item_id)
        assert uri == placeholder() if ds.items["image"].iat[item] == "" else is_picture(uri)
    assert table["poster"][TABLE_POSTERS:].isna().all()  # the rest stay text: a few kB each


def test_data_page_hides_the_genres_and_years_a_csv_does_not_have(make):
    import json

    config = json.loads(make().run().dataframe[0].proto.columns)
    assert config["genres"]["hidden"] and config["year"]["hidden"]  # this CSV has neither (MovieLens: test_genre_tags)
