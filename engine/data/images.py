"""Item pictures for any dataset: a folder of files named by raw item id, attached by the spec.

A spec ends with ``+images:DIR`` to attach a folder of pictures to any dataset, e.g.
``movielens-dslabs+images:data/posters`` or ``ml-100k:data/ml-100k+images:data/posters``. The
image part comes last and is split off first (`split_spec`), so the rest is an ordinary spec. In
a URL the dashboard writes the ``+`` encoded (``%2B``); a ``+`` typed by hand into a URL arrives
as a space, so ``NAME images:DIR`` is read the same way.

The folder holds one file per item, ``<item_id>.jpg`` (``.jpeg``, ``.png``, ``.webp``), any size
and aspect ratio. `scan_images` decodes every file once when the dataset is loaded (JPEGs at a
reduced scale: about 0.3 ms for a 185x278 poster), so a missing, unreadable or truncated file is
found then, never on a page: such items keep their interactions and are drawn with a neutral
placeholder (`placeholder`). ``dataset.extras["image_problems"]`` reports the count and first
ids of each kind, and files of the folder that are not pictures.

The image set is part of the dataset's fingerprint: each item's file name, size and
modification time (not the content: one ``stat`` per file keeps loading fast), so a checkpoint
trained with one set of pictures refuses another, and feature caches follow the pictures.

Thumbnails (`thumbnail_file`) are JPEGs of at most `THUMBNAIL_SIZE` pixels (a few kB), made once
and kept in a cache folder the caller names, under a key of the image file's path, size and
modification time: a changed picture gets a new thumbnail, an unchanged one is read back.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from engine.errors import DatasetError

if TYPE_CHECKING:
    from engine.data.dataset import Dataset

#: What a picture's file name may end with (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: The spec's image part: ``SPEC+images:DIR``.
IMAGES_MARKER = "+images:"
#: A ``+`` typed into a URL's query arrives as a space.
_URL_MARKER = " images:"
#: Thumbnails fit in a square of this many pixels (pages show them at 48-96 px).
THUMBNAIL_SIZE = 96
_THUMBNAIL_QUALITY = 80
_THUMBNAIL_VERSION = 1
#: Neutral grey for items without a usable picture.
PLACEHOLDER_GREY = (200, 200, 200)
#: First ids listed per kind of problem.
_FIRST = 5


# ---- the spec ------------------------------------------------------------------------------
def split_spec(spec: str) -> tuple[str, str | None]:
    """``(base spec, image folder or None)``: ``"ml-100k:d+images:p"`` -> ``("ml-100k:d", "p")``.

    Raises
    ------
    DatasetError
        ``+images`` without a folder.
    """
    text = str(spec).strip()
    for marker in (IMAGES_MARKER, _URL_MARKER):
        base, sep, folder = text.rpartition(marker)
        if sep:
            if not folder.strip():
                raise DatasetError(f"{text!r}: name the picture folder after {IMAGES_MARKER} (NAME+images:DIR)")
            return base.strip(), folder.strip()
    if text.endswith("+images"):
        raise DatasetError(f"{text!r}: name the picture folder after {IMAGES_MARKER} (NAME+images:DIR)")
    return text, None


def with_images(spec: str, folder: str | None) -> str:
    """The spec with its image folder replaced by `folder` (None: removed)."""
    base, _ = split_spec(spec)
    return base if not folder else f"{base}{IMAGES_MARKER}{folder}"


def images_folder(spec: str) -> Path | None:
    """The picture folder a spec names, as written (not resolved), or None."""
    _, folder = split_spec(spec)
    if folder is None:
        return None
    try:
        return Path(folder).expanduser()
    except RuntimeError:  # "~someone" naming no user: the path as written, which does not exist
        return Path(folder)


# ---- scanning ------------------------------------------------------------------------------
@dataclass
class ImageScan:
    """What a picture folder holds for a dataset's items.

    Attributes
    ----------
    files : item id -> file name, for every item whose picture decodes.
    missing, unreadable : item ids without a file, or whose file does not decode (corrupt,
        truncated, not a picture under a picture's name).
    not_images : names of the folder's entries that are not pictures (other suffixes, folders).
    key : hash of each item's file name, size and modification time.
    """

    folder: Path
    files: dict[str, str]
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)
    key: str = ""

    def problems(self) -> dict:
        """Counts and first ids of each problem (``dataset.extras["image_problems"]``)."""
        return {
            "count": len(self.missing) + len(self.unreadable),
            "with_image": len(self.files),
            "missing": self.missing[:_FIRST],
            "missing_count": len(self.missing),
            "unreadable": self.unreadable[:_FIRST],
            "unreadable_count": len(self.unreadable),
            "not_images": self.not_images[:_FIRST],
            "not_images_count": len(self.not_images),
        }


def scan_images(folder, item_ids) -> ImageScan:
    """Match a folder's pictures to `item_ids` (raw ids) and decode each once.

    Raises
    ------
    DatasetError
        The folder does not exist or is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DatasetError(f"images: {folder} {what} (+images:DIR names a folder of pictures named by item id)")
    by_stem: dict[str, str] = {}
    not_images = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        suffix = Path(entry.name).suffix.lower()
        if entry.name.startswith("."):
            continue  # hidden files (.DS_Store, editors' backups) are nobody's picture
        if suffix in IMAGE_SUFFIXES and entry.is_file():
            by_stem.setdefault(Path(entry.name).stem, entry.name)
        else:
            not_images.append(entry.name)
    scan = ImageScan(folder=folder, files={}, not_images=not_images)
    h = hashlib.sha256()
    for item in map(str, item_ids):
        name = by_stem.get(item)
        if name is None:
            scan.missing.append(item)
            continue
        stat = (folder / name).stat()
        h.update(f"{item}\x1f{name}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}\n".encode())
        if decodes(folder / name):
            scan.files[item] = name
        else:
            scan.unreadable.append(item)
    scan.key = h.hexdigest()[:16]
    return scan


def decodes(file: Path) -> bool:
    """Whether the whole file decodes as a picture (a truncated JPEG does not). JPEGs are
    decoded at 1/8 scale, which reads every byte at a fraction of the cost."""
    try:
        with Image.open(file) as im:
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
        return True
    except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, DecompressionBomb...)
        return False


def attach_images(dataset: Dataset, folder, spec: str) -> Dataset:
    """Give `dataset` the pictures in `folder` and the full `spec` (in place; returned).

    Items without a usable picture keep their interactions: ``items["image"]`` is ``""`` for
    them and they are drawn with `placeholder`. A `UserWarning` says in one line how many items
    lack one, as ``extras["image_problems"]`` does.
    """
    scan = scan_images(folder, dataset.item_ids)
    dataset.images_dir = str(scan.folder)
    dataset.items["image"] = [scan.files.get(i, "") for i in dataset.item_ids]
    dataset.image_key = scan.key
    dataset.spec = spec
    dataset.__dict__.pop("fingerprint", None)  # computed again with the pictures in it
    problems = scan.problems()
    dataset.extras["image_problems"] = problems
    if problems["count"] or problems["not_images_count"]:
        warnings.warn(problem_line(problems), UserWarning, stacklevel=2)
    return dataset


def problem_line(problems: dict) -> str:
    """One line on what a picture folder lacks: ``"12 of 900 items have no usable picture ..."``."""
    parts = []
    total = problems["count"] + problems["with_image"]
    if problems["count"]:
        kinds = []
        if problems["missing_count"]:
            kinds.append(f"{problems['missing_count']:,} missing ({', '.join(problems['missing'])}{_more(problems, 'missing')})")
        if problems["unreadable_count"]:
            kinds.append(
                f"{problems['unreadable_count']:,} unreadable ({', '.join(problems['unreadable'])}{_more(problems, 'unreadable')})"
            )
        parts.append(f"{problems['count']:,} of {total:,} items have no usable picture: {'; '.join(kinds)}")
    if problems["not_images_count"]:
        parts.append(
            f"{problems['not_images_count']:,} file(s) are not pictures and were skipped"
            f" ({', '.join(problems['not_images'])}{_more(problems, 'not_images')})"
        )
    return "images: " + ". ".join(parts) if parts else f"images: all {total:,} items have a picture"


def _more(problems: dict, kind: str) -> str:
    return ", ..." if problems[f"{kind}_count"] > len(problems[kind]) else ""


# ---- pictures of items ---------------------------------------------------------------------
def has_images(dataset: Dataset) -> bool:
    """Whether the dataset carries item pictures (a visual dataset, or ``+images:DIR``)."""
    return dataset.images_dir is not None and "image" in dataset.items


def image_file(dataset: Dataset, item_idx: int) -> Path | None:
    """The picture file of an item, None where it has none (missing or unreadable)."""
    if not has_images(dataset):
        raise DatasetError(f"dataset {dataset.name!r} has no item images")
    name = str(dataset.items["image"].iat[int(item_idx)])
    return Path(dataset.images_dir) / name if name else None


@lru_cache(maxsize=8)
def placeholder(width: int, height: int) -> Image.Image:
    """A neutral grey picture with a lighter frame, for items without a usable one."""
    image = Image.new("RGB", (width, height), PLACEHOLDER_GREY)
    inner = Image.new("RGB", (max(1, width - 8), max(1, height - 8)), (215, 215, 215))
    image.paste(inner, (4, 4))
    return image


def thumbnail_file(dataset: Dataset, item_idx: int, cache_dir, size: int = THUMBNAIL_SIZE) -> Path | None:
    """The item's thumbnail (JPEG within `size` x `size`), made once into `cache_dir`; None
    where the item has no usable picture or its file no longer decodes."""
    source = image_file(dataset, item_idx)
    if source is None:
        return None
    try:
        stat = source.stat()
    except OSError:
        return None
    key = hashlib.sha256(
        f"{source.resolve()}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}\x1f{size}\x1f{_THUMBNAIL_VERSION}".encode()
    ).hexdigest()[:24]
    target = Path(cache_dir) / key[:2] / f"{key}.jpg"
    if target.is_file():
        return target
    data = _thumbnail_bytes(source, size)
    if data is None:
        return None
    _write_atomic(target, data)
    return target


def thumbnail_uri(dataset: Dataset, item_idx: int, cache_dir=None, size: int = THUMBNAIL_SIZE) -> str | None:
    """The item's thumbnail as a ``data:`` URI (image columns take no local paths), the
    placeholder's where it has no usable picture; None for a dataset without pictures.
    Without `cache_dir` the thumbnail is made in memory each time."""
    if not has_images(dataset):
        return None
    if cache_dir is not None:
        file = thumbnail_file(dataset, item_idx, cache_dir, size)
        data = file.read_bytes() if file is not None else None
    else:
        source = image_file(dataset, item_idx)
        data = _thumbnail_bytes(source, size) if source is not None else None
    if data is None:
        return placeholder_uri(size)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


@lru_cache(maxsize=8)
def placeholder_uri(size: int = THUMBNAIL_SIZE) -> str:
    """The placeholder as a ``data:`` URI, poster-shaped (2:3) within `size`."""
    buf = io.BytesIO()
    placeholder(max(1, size * 2 // 3), size).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thumbnail_bytes(source: Path, size: int) -> bytes | None:
    try:
        with Image.open(source) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at the smallest scale still >= size
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=_THUMBNAIL_QUALITY)
    except Exception:  # a file changed since the scan; Pillow raises many kinds
        return None
    return buf.getvalue()


def _write_atomic(target: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so a concurrent reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".thumb-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
