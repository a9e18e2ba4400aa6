"""What a visitor's spec may name (`engine.data.access`) and the size limits of generated datasets."""

from __future__ import annotations

import json
import os

import pytest

from engine.data import load_dataset
from engine.data import synthetic as synthetic_module
from engine.data.access import PathRefusedError, allowed_roots, check_spec_paths, spec_allowed
from engine.data.visual import generate_visual_synthetic
from engine.errors import DatasetError, EngineError, ParameterError

RATINGS = "user,item,rating\n1,10,4\n2,10,5\n2,11,3\n"


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A data folder with a CSV and an upload, and an outside folder with a CSV of its own."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "uploads").mkdir(parents=True)
    outside.mkdir()
    (data / "mine.csv").write_text(RATINGS)
    (data / "uploads" / "up.csv").write_text(RATINGS)
    (outside / "secret.csv").write_text(RATINGS)
    monkeypatch.chdir(data)  # relative paths resolve against the working directory, as the loader's do
    return data, outside


def refusal(spec, data, roots=()) -> str:
    with pytest.raises(PathRefusedError) as info:
        check_spec_paths(spec, data, roots)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_paths_inside_the_data_folder_and_its_uploads_pass(layout):
    data, _ = layout
    inside = (f"csv:{data / 'mine.csv'}", f"csv:{data / 'uploads' / 'up.csv'}", "csv:mine.csv", "ml-100k", "ml-100k:./x")
    for spec in inside:
        check_spec_paths(spec, data)
    assert load_dataset(f"csv:{data / 'uploads' / 'up.csv'}", data_dir=data).n_interactions == 3


def test_formats_without_a_path_and_unknown_names_are_left_to_the_loader(layout):
    data, _ = layout
    for spec in ("movielens-dslabs", "synthetic:60x40x600", "synthetic", "nonsense:/etc/passwd"):
        check_spec_paths(spec, data)


@pytest.mark.parametrize(
    "spec",
    ["csv:/etc/passwd", "csv:/proc/self/environ", "ml-100k:../../../../", "ml-latest:/", "visual:/tmp",
     "csv:../outside/secret.csv", "csv:uploads/../../outside/secret.csv", "ml-1m:~", "csv:mine.csv\x00"],
)  # fmt: skip
def test_paths_outside_are_refused_in_one_line(layout, spec):
    data, _ = layout
    message = refusal(spec, data)
    assert message.startswith(spec.partition(":")[0] + ": ") and "operator allowed" in message
    assert not spec_allowed(spec, data)


def test_absolute_path_outside_is_refused(layout):
    data, outside = layout
    refusal(f"csv:{outside / 'secret.csv'}", data)


def test_the_message_does_not_say_whether_the_path_exists(layout):
    data, outside = layout
    assert (outside / "secret.csv").is_file() and not (outside / "missing.csv").exists()
    existing = refusal(f"csv:{outside / 'secret.csv'}", data)
    assert existing == refusal(f"csv:{outside / 'missing.csv'}", data)
    assert existing == refusal("csv:/etc/passwd", data) == refusal("csv:/no/such/file.csv", data)
    assert refusal(f"ml-100k:{outside}", data) == refusal(f"ml-100k:{outside / 'nothing-here'}", data)


def test_a_symlink_out_of_the_data_folder_is_refused(layout):
    data, outside = layout
    (data / "link.csv").symlink_to(outside / "secret.csv")
    (data / "linked").symlink_to(outside)
    refusal("csv:link.csv", data)
    refusal(f"csv:{data / 'linked' / 'secret.csv'}", data)
    refusal(f"ml-100k:{data / 'linked'}", data)
    # `linked/..` is the link target's parent for the OS, not the data folder.
    refusal(f"csv:{data / 'linked' / '..' / 'outside' / 'secret.csv'}", data)


def test_an_allowed_root_is_accepted_for_reading_only(layout, monkeypatch):
    data, outside = layout
    monkeypatch.setenv("RECSYS_ALLOWED_ROOTS", os.pathsep.join(["", str(outside), "/nonexistent-root"]))
    roots = allowed_roots()
    assert [str(r) for r in roots] == [str(outside), "/nonexistent-root"]
    check_spec_paths(f"csv:{outside / 'secret.csv'}", data, roots)
    check_spec_paths(f"ml-100k:{outside}", data, roots)
    refusal("csv:/etc/passwd", data, roots)
    # Generating writes: only inside the data folder, whatever the operator allowed for reading.
    message = refusal(f"visual-synthetic:{outside / 'vs'}", data, roots)
    assert "inside the data folder" in message


def test_generated_datasets_only_strictly_inside_the_data_folder(layout):
    data, outside = layout
    check_spec_paths("visual-synthetic", data)
    check_spec_paths(f"visual-synthetic:{data / 'vs2'}", data)
    for target in (outside / "vs", data, ".", "../vs"):
        refusal(f"visual-synthetic:{target}", data)
    assert not (outside / "vs").exists() and not (data.parent / "vs").exists()


def test_the_command_line_is_the_operator_and_reads_any_path(layout):
    _, outside = layout
    assert load_dataset(f"csv:{outside / 'secret.csv'}").n_users == 2  # load_dataset itself checks nothing


# ---- size limits --------------------------------------------------------------------------------


def test_an_oversized_synthetic_spec_is_refused_before_allocating(monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("the generator started")

    monkeypatch.setattr(synthetic_module.np.random, "default_rng", no_generation)
    with pytest.raises(ParameterError) as info:
        load_dataset("synthetic:100000x100000x1000000000")
    message = str(info.value)
    assert "\n" not in message and "synthetic: 100,000 users is over the limit of 20,000" in message
    assert "RECSYS_SYNTHETIC_LIMIT" in message
    with pytest.raises(ParameterError, match="3,000,000 interactions is over the limit of 2,000,000"):
        load_dataset("synthetic:10000x10000x3000000")


def test_the_operator_raises_or_lowers_the_synthetic_limit(monkeypatch):
    monkeypatch.setenv("RECSYS_SYNTHETIC_LIMIT", "100x100x1000")
    assert load_dataset("synthetic:60x40x600").n_interactions == 600
    with pytest.raises(ParameterError, match="120 items is over the limit of 100"):
        load_dataset("synthetic:60x120x600")
    monkeypatch.setenv("RECSYS_SYNTHETIC_LIMIT", "lots")
    with pytest.raises(ParameterError, match="RECSYS_SYNTHETIC_LIMIT must be 3 positive whole numbers"):
        load_dataset("synthetic:60x40x600")


def test_visual_synthetic_sizes_are_limited_before_writing(tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="visual-synthetic: 5,000 items is over the limit of 2,000"):
        generate_visual_synthetic(tmp_path / "vs", n_users=10, n_items=5000)
    monkeypatch.setenv("RECSYS_VISUAL_SYNTHETIC_LIMIT", "10x5")
    with pytest.raises(ParameterError, match="12 users is over the limit of 10"):
        generate_visual_synthetic(tmp_path / "vs", n_users=12, n_items=5, min_interactions=3, max_interactions=4)
    assert list(tmp_path.iterdir()) == []


# ---- regeneration never deletes what the generator did not write ---------------------------------


def old_folder(tmp_path):
    folder = generate_visual_synthetic(tmp_path / "vs", n_users=6, n_items=6, min_interactions=3, max_interactions=4)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "version": 0}))
    return folder


def test_a_folder_with_someone_elses_meta_json_is_not_regenerated(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "meta.json").write_text('{"project": "my thesis"}')
    (folder / "chapter1.tex").write_text("keep me")
    with pytest.raises(DatasetError, match="holds files the generator did not write"):
        load_dataset(f"visual-synthetic:{folder}")
    assert sorted(p.name for p in folder.iterdir()) == ["chapter1.tex", "meta.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs"]  # nothing moved aside


def test_an_old_generated_folder_with_extra_files_is_kept(tmp_path):
    folder = old_folder(tmp_path)
    (folder / "notes.txt").write_text("keep me")
    (folder / "images" / "holiday.jpg").write_bytes(b"not a generated image")
    with pytest.raises(DatasetError, match="holds files the generator did not write"):
        load_dataset(f"visual-synthetic:{folder}")
    assert (folder / "notes.txt").read_text() == "keep me" and (folder / "images" / "holiday.jpg").exists()


def test_an_old_generated_folder_is_still_regenerated(tmp_path):
    folder = old_folder(tmp_path)
    assert load_dataset(f"visual-synthetic:{folder}").n_items == 6
    assert json.loads((folder / "meta.json").read_text())["version"] > 0


@pytest.mark.parametrize("text", ["[1, 2]", '"text"', '{"generator": "visual-synthetic", "n_items": "many"}'])
def test_a_meta_json_that_is_not_the_generators_is_one_line(tmp_path, text):
    folder = tmp_path / "vs"
    folder.mkdir()
    (folder / "meta.json").write_text(text)
    with pytest.raises(EngineError) as info:
        load_dataset(f"visual-synthetic:{folder}")
    assert "\n" not in str(info.value) and (folder / "meta.json").read_text() == text
