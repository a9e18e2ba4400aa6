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
