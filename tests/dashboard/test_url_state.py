"""Sticky URL state: a page reached through the navigation (empty query) gets the choices back."""


def test_navigation_keeps_dataset_models_and_user(trained_app):
    at = trained_app(dataset="movielens-dslabs", user="42")
    at.run()
    assert not at.exception
    at.switch_page("app_pages/users.py")
    at.query_params.clear()  # what the sidebar navigation does to the URL
    at.run()
    assert not at.exception
    assert at.query_params["dataset"] == "movielens-dslabs"
    assert at.query_params["user"] == "42"
    assert at.query_params["models"]  # chosen by the picker on the users page
    models = at.query_params["models"]

    at.switch_page("app_pages/similar.py")
    at.query_params.clear()
    at.run()
    assert at.query_params["user"] == "42"
    assert at.query_params["models"].split(",")[0] in models.split(",") + [""]


def test_a_link_with_its_own_values_wins(trained_app):
    at = trained_app(user="42")
    at.run()
    at.switch_page("app_pages/users.py")
    at.query_params["user"] = "7"
    at.run()
    assert not at.exception
    assert at.query_params["user"] == "7"
    assert any("7" in h.value for h in at.header) or any("7" in s.value for s in at.subheader)


def test_switching_the_dataset_drops_the_previous_datasets_choices(trained_app):
    at = trained_app(dataset="movielens-dslabs", user="42", item="260", k="5")
    at.switch_page("app_pages/users.py")
    at.run()
    assert not at.exception and at.query_params["models"]
    # The sidebar: "other spec..." and a spec typed in.
    at.selectbox(key="sidebar_dataset").set_value("other spec...").run()
    at.text_input(key="sidebar_spec").input("synthetic:60x40x600").run()
    assert not at.exception
    assert at.query_params["dataset"] == "synthetic:60x40x600"
    for key in ("models", "user", "item"):
        assert key not in at.query_params, key
    assert at.query_params["k"] == "5"  # not a choice of one dataset: kept
    # The next page does not bring them back from the session either.
    at.switch_page("app_pages/data.py")
    at.query_params.clear()
    at.run()
    assert not at.exception
    assert dict(at.query_params) == {"dataset": "synthetic:60x40x600"}


def test_a_link_without_a_dataset_keeps_its_choices(trained_app):
    at = trained_app(user="42")  # the default dataset, not named in the link
    at.switch_page("app_pages/users.py")
    at.run()
    assert not at.exception
    assert at.query_params["dataset"] == "movielens-dslabs" and at.query_params["user"] == "42"


def test_the_sidebar_shows_a_dataset_a_page_switched_to(trained_app, monkeypatch):
    """A page switching the dataset (as the Data page does after an upload): the sidebar's
    select box follows the URL instead of sending its old choice back."""
    from dashboard.services import datasets

    at = trained_app()
    at.run()
    assert at.selectbox(key="sidebar_dataset").value == "movielens-dslabs"
    monkeypatch.setattr(datasets, "dataset_choices", lambda: ["movielens-dslabs", "synthetic:60x40x600"])
    at.query_params["dataset"] = "synthetic:60x40x600"
    at.run()
    assert not at.exception
    assert at.selectbox(key="sidebar_dataset").value == "synthetic:60x40x600"
    at.run()  # another click: the select box does not switch back
    assert at.query_params["dataset"] == "synthetic:60x40x600"
