"""URL probes a visitor could send: paths outside the data folder, traversal, oversized specs.

Each answer is one error line, and nothing outside the data folder is read, created or deleted.
"""

from __future__ import annotations

import json
import re

import pytest

from engine.data.access import READ_WHERE

REFUSED = "this dashboard opens datasets only from the data folder"


@pytest.fixture
def outside(tmp_path_factory):
    """A folder next to (not inside) the test's data folder, holding someone's files."""
    folder = tmp_path_factory.mktemp("outside")
    rows = [f"user{u},item{i},{1 + (u + i) % 5}" for u in range(8) for i in range(6) if (u + i) % 3]
    (folder / "secret.csv").write_text("user,item,rating\nalice,the-secret-item,5\n" + "\n".join(rows) + "\n")
    return folder


def one_error(at) -> str:
    assert not at.exception
    assert len(at.error) == 1 and len(at.metric) == 0
    message = at.error[0].value
    assert "\n" not in message
    return re.sub(r"\\(.)", r"\1", message)  # as read: without the Markdown escapes of the error box


@pytest.mark.parametrize(
    "spec",
    ["csv:/etc/passwd", "csv:/proc/self/environ", "ml-100k:../../../../", "ml-latest:/", "visual:/etc",
     "csv:/no/such/file.csv"],
)  # fmt: skip
def test_paths_outside_the_data_folder_are_one_line_that_reads_nothing(app, spec):
    message = one_error(app(dataset=spec).run())
    # The same words for every path, existing or not: nothing of the file, nothing about the disk.
    assert message == f"{spec.partition(':')[0]}: this dashboard opens datasets only {READ_WHERE}; that path is not one of them"


def test_a_csv_outside_is_refused_and_its_content_never_shown(app, outside):
    at = app(dataset=f"csv:{outside / 'secret.csv'}").run()
    one_error(at)
    shown = " ".join(str(e.value) for e in [*at.error, *at.caption, *at.markdown, *at.text])
    assert len(at.dataframe) == 0 and "the-secret-item" not in shown and "alice" not in shown


def test_a_symlink_out_of_the_data_folder_is_refused(app, data_dir, outside):
    (data_dir / "shortcut.csv").symlink_to(outside / "secret.csv")
    assert REFUSED in one_error(app(dataset=f"csv:{data_dir / 'shortcut.csv'}").run())


def test_visual_synthetic_outside_creates_moves_and_deletes_nothing(app, data_dir, outside):
    from engine.data.visual import generate_visual_synthetic

    # Someone's folder with a meta.json, and an old generated catalogue the operator keeps there.
    (outside / "thesis").mkdir()
    (outside / "thesis" / "meta.json").write_text('{"title": "my thesis"}')
    old = generate_visual_synthetic(outside / "old", n_users=6, n_items=6, min_interactions=3, max_interactions=4)
    meta = {**json.loads((old / "meta.json").read_text()), "version": 0}
    (old / "meta.json").write_text(json.dumps(meta))

    def snapshot():
        return sorted((str(p.relative_to(outside)), p.stat().st_mtime_ns) for p in outside.rglob("*"))

    before = snapshot()
    for target in ("new/catalogue", "thesis", "old", "."):
        message = one_error(app(dataset=f"visual-synthetic:{outside / target}").run())
        assert message.startswith("visual-synthetic: this dashboard opens datasets only inside the data folder")
    assert snapshot() == before
    assert list(data_dir.glob("visual-synthetic*")) == []  # nor was the default generated instead


def test_an_oversized_synthetic_spec_is_one_line_before_allocating(app):
    message = one_error(app(dataset="synthetic:100000x100000x1000000000").run())
    assert message.startswith("synthetic: 100,000 users is over the limit of 20,000")
    assert "RECSYS_SYNTHETIC_LIMIT" in message


def test_the_picker_offers_no_dataset_outside_the_data_folder(app, data_dir, outside):
    from engine.runs.experiment import train_and_evaluate

    # The operator trained on a file outside from the command line: its run is in the database.
    train_and_evaluate(f"csv:{outside / 'secret.csv'}", "popularity", {}, data_dir=data_dir)
    at = app().run()
    assert not at.exception
    options = at.selectbox(key="sidebar_dataset").options
    assert not [o for o in options if str(outside) in o]
