"""`download` against a local HTTP server on 127.0.0.1 serving zips built here."""

from __future__ import annotations

import hashlib
import socket
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.data import load_dataset
from engine.data.download import DOWNLOADS, download
from engine.errors import DatasetError

U_ITEM = "\n".join(
    "|".join([str(i), f"Movie {i} (1995)", "01-Jan-1995", "", "http://x", *(["0"] * 18 + ["1"])]) for i in (1, 2)
)
ML100K_FILES = {
    "u.data": "1\t1\t4\t100\n1\t2\t5\t101\n2\t1\t3\t102\n",
    "u.item": U_ITEM + "\n",
    "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n",
}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on a free port: yields (folder, base_url)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def build_zip(folder, zip_name, files, *, top="ml-100k", md5=None):
    """Write `zip_name` holding `files` under `top/` and its GroupLens-style `.md5` file."""
    path = folder / zip_name
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{top}/{name}" if top else name, text)
    digest = md5 or hashlib.md5(path.read_bytes()).hexdigest()
    (folder / f"{zip_name}.md5").write_text(f"MD5 ({zip_name}) = {digest}\n")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_verifies_unpacks_and_reports_progress(served, tmp_path):
    folder, url = served
    size = build_zip(folder, "ml-100k.zip", ML100K_FILES).stat().st_size
    calls = []
    target = tmp_path / "data" / "ml-100k"
    out = download("ml-100k", target, base_url=url, progress=lambda done, total: calls.append((done, total)))
    assert out == target
    assert sorted(p.name for p in target.iterdir()) == ["u.data", "u.item", "u.user"]
    assert [p.name for p in target.parent.iterdir()] == ["ml-100k"]  # no temporary leftovers
    assert calls[0] == (0, size) and calls[-1] == (size, size)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    ds = load_dataset(f"ml-100k:{out}")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)


def test_complete_target_is_left_alone_unless_forced(served, tmp_path):
    folder, url = served
    build_zip(folder, "ml-100k.zip", ML100K_FILES)
    target = download("ml-100k", tmp_path / "data" / "ml", base_url=url)
    (target / "mine.txt").write_text("keep")
    # Already complete: returned without touching the network (this port has no server).
    assert download("ml-100k", target, base_url=f"http://127.0.0.1:{free_port()}/") == target
    assert (target / "mine.txt").exists()
    download("ml-100k", target, base_url=url, force=True)
    assert not (target / "mine.txt").exists() and (target / "u.data").exists()
    assert [p.name for p in target.parent.iterdir()] == ["ml"]


def test_wrong_checksum_leaves_nothing_on_disk(served, tmp_path):
    folder, url = served
    build_zip(folder, "ml-100k.zip", ML100K_FILES, md5="0" * 32)
    target = tmp_path / "new" / "deeper" / "ml-100k"
    with pytest.raises(DatasetError, match="checksum mismatch for ml-100k.zip: expected MD5 0{32}, got [0-9a-f]{32}"):
        download("ml-100k", target, base_url=url)
    assert list(tmp_path.iterdir()) == [folder]  # not even the parent folders it created


def test_without_md5_file_the_known_checksum_is_used(served, tmp_path):
    folder, url = served
    build_zip(folder, "ml-100k.zip", ML100K_FILES)
    (folder / "ml-100k.zip.md5").unlink()
    # The built-in MD5 is the real GroupLens archive's, which this test zip cannot match.
    with pytest.raises(DatasetError, match="expected MD5 0e33842e24a9c977be4e0107933c0723"):
        download("ml-100k", tmp_path / "t", base_url=url)
    assert list(tmp_path.iterdir()) == [folder]


def test_no_checksum_at_all_is_refused(served, tmp_path):
    folder, url = served
    files = {"ratings.csv": "userId,movieId,rating,timestamp\n", "movies.csv": "movieId,title,genres\n"}
    build_zip(folder, "ml-latest-small.zip", files, top="ml-latest-small")
    (folder / "ml-latest-small.zip.md5").unlink()
    with pytest.raises(DatasetError, match="no checksum for ml-latest-small.zip.*404.*refusing"):
        download("ml-latest-small", tmp_path / "t", base_url=url)


def test_flat_archive_and_archive_lacking_files(served, tmp_path):
    folder, url = served
    files = {"ratings.csv": "userId,movieId,rating,timestamp\n1,1,4,9\n", "movies.csv": "movieId,title,genres\n1,A (1999),Drama\n"}
    build_zip(folder, "ml-latest-small.zip", files, top="")
    out = download("ml-latest-small", tmp_path / "ml-latest-small", base_url=url)
    assert load_dataset(f"ml-latest:{out}").items.iloc[0]["year"] == 1999
    assert load_dataset("ml-latest-small", data_dir=tmp_path).n_interactions == 1  # the alias reads data_dir/NAME
    build_zip(folder, "ml-1m.zip", {"ratings.dat": "1::1::4::9\n"}, top="ml-1m")
    with pytest.raises(DatasetError, match="ml-1m.zip: the archive lacks movies.dat, users.dat"):
        download("ml-1m", tmp_path / "one", base_url=url)
    assert not (tmp_path / "one").exists()


def test_member_outside_the_archive_folder_is_refused(served, tmp_path):
    folder, url = served
    build_zip(folder, "ml-100k.zip", {**ML100K_FILES, "../../escape.txt": "x"})
    with pytest.raises(DatasetError, match="refusing member"):
        download("ml-100k", tmp_path / "d" / "ml-100k", base_url=url)
    assert not list(tmp_path.rglob("escape.txt"))


def test_unreachable_server_says_offline_in_one_line(tmp_path):
    port = free_port()
    with pytest.raises(DatasetError) as err:
        download("ml-100k", tmp_path / "x" / "ml-100k", base_url=f"http://127.0.0.1:{port}/", timeout=5)
    message = str(err.value)
    assert message.startswith(f"cannot reach 127.0.0.1:{port} (offline?): ") and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_unknown_name_and_occupied_target(tmp_path):
    with pytest.raises(DatasetError, match="cannot download 'ml-10m'.*valid: ml-100k, ml-1m, ml-latest-small"):
        download("ml-10m", tmp_path)
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(DatasetError, match="holds other files"):
        download("ml-100k", tmp_path, base_url=f"http://127.0.0.1:{free_port()}/")
    assert set(DOWNLOADS) == {"ml-100k", "ml-1m", "ml-latest-small"}
