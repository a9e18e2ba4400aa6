"""The sidebar's dataset picker: every pick sticks, not only the first."""

from __future__ import annotations


def test_picking_twice_in_a_row_switches_twice(app, data_dir):
    (data_dir / "uploads").mkdir()
    upload = data_dir / "uploads" / "mine.csv"
    upload.write_text("user,item\n" + "\n".join(f"{u},{i}" for u in range(1, 9) for i in range(1, 7)) + "\n")
    at = app().run()
    at.selectbox(key="sidebar_dataset").set_value(f"csv:{upload}").run()
    assert not at.exception and at.query_params["dataset"] == f"csv:{upload}"
    # The second pick (back to the default) must not be undone by the first one's URL change.
    at.selectbox(key="sidebar_dataset").set_value("movielens-dslabs").run()
    assert not at.exception and at.query_params["dataset"] == "movielens-dslabs"
    assert at.selectbox(key="sidebar_dataset").value == "movielens-dslabs"
