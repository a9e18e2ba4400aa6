"""Image datasets: the generated ``visual-synthetic`` catalogue and the ``visual:DIR`` format.

A visual dataset is a folder (the VisRec tutorial's layout)::

    DIR/interactions.csv     user_id,item_id[,timestamp][,rating]
    DIR/images/<item_id>.png  one image per item (any format Pillow reads: png, jpg, webp, ...)
    DIR/items.csv            optional: item_id,title[,genres]
    DIR/ground_truth.npz     optional: what a generator knows (see `generate_visual_synthetic`)

``visual-synthetic[:DIR]`` generates such a folder (default ``data_dir/visual-synthetic``) the
first time it is asked for, deterministically and atomically, and then reads it like any other.

The synthetic catalogue exists so that attention can be *checked*: each 224x224 image shows 2-4
motifs (a shape in a colour, 36 kinds) on a textured, cluttered background; each user has a
hidden taste for 2-3 motif kinds, and interactions follow a utility of the motifs an image
shows plus popularity and noise. The ground truth says which of the 7x7 grid cells each motif
covers, so a model's component attention can be scored against it (`engine.explain.attention`).
"""

from __future__ import annotations

import colorsys
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from engine.data.dataset import Dataset, from_frames
from engine.data.delimited import _check_header, _read_table, _require_dir, _require_file, _Table
from engine.data.size_limits import check_size
from engine.errors import DatasetError, ParameterError

IMAGE_SIZE = 224
GRID = 7
CELL = IMAGE_SIZE // GRID  # 32 pixels
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

#: Saturated colours far from the muted backgrounds, so a cell's colour tells a motif apart.
COLOURS = {
    "red": (220, 35, 35),
    "yellow": (235, 205, 30),
    "green": (40, 170, 60),
    "cyan": (30, 190, 205),
    "blue": (40, 70, 215),
    "magenta": (200, 45, 190),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond")
MOTIFS = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)

#: A motif covers a cell when it shows on at least this share of the cell's pixels.
COVER_FRACTION = 0.1
#: Bumped whenever the generator's output changes, so an old folder is regenerated.
GENERATOR_VERSION = 3
#: Sparser than before on purpose: ~29 training interactions per item, so an item's embedding
#: alone says less about it and a model gains from reading its image (at 2,000 users x 700
#: items, ~90 per item, the embeddings already knew which items match a user and ACF's
#: attention learned nothing; at 600 x 1,500, ~12 per item, every model was near random).
DEFAULT_SIZE = {"n_users": 1000, "n_items": 1000}
#: Defaults of older generator versions: a folder generated with them is regenerated with
#: today's defaults rather than its recorded values.
_OLD_DEFAULTS = {"n_users": 2000, "n_items": 700, "popularity_exponent": 0.5}
_START = 1_577_836_800  # 2020-01-01 UTC
#: The largest USERSxITEMS generated unless the operator sets `LIMIT_ENV`: each item is a PNG
#: (about 70 kB and 12 ms), and users x items logits are held at once (2,000 items: 140 MB of
#: images, half a minute).
LIMIT = (10_000, 2_000)
LIMIT_ENV = "RECSYS_VISUAL_SYNTHETIC_LIMIT"
#: What the generator writes into its folder: a folder holding anything else is not replaced.
_GENERATED = {"interactions.csv", "items.csv", "images", "ground_truth.npz", "meta.json"}


# ---- generation ----------------------------------------------------------------------------
def generate_visual_synthetic(
    directory,
    *,
    n_users: int = DEFAULT_SIZE["n_users"],
    n_items: int = DEFAULT_SIZE["n_items"],
    min_interactions: int = 20,
    max_interactions: int = 60,
    affinity: float = 2.5,
    popularity_exponent: float = 0.25,
    noise_share: float = 0.3,
    random_state: int = 0,
) -> Path:
    """Write a synthetic visual dataset to `directory` (atomically) and return its path.

    Each item is a 224x224 PNG with 2-4 distinct motifs (``"red circle"``, ``"blue star"``: 6
    colours x 6 shapes) placed without overlap on a muted, textured background with clutter
    (thin lines and dots). Each user prefers 2-3 motif kinds and draws between
    `min_interactions` and `max_interactions` items without replacement with probability
    proportional to ``exp(affinity * preferred_motifs_in_image + popularity)`` (Gumbel top-k),
    popularity being ``-popularity_exponent * log(rank)`` over a random ranking of items; a
    share `noise_share` of each history is instead drawn uniformly (impulse clicks). So about
    40% of a typical history holds none of the user's motifs and says nothing about the next
    item: item-level attention has something to tell apart. Timestamps order each history at
    random.

    Files: ``interactions.csv`` (user_id,item_id,timestamp), ``items.csv`` (item_id,title with
    the motifs, e.g. ``"red circle, blue star"``), ``images/<item_id>.png``,
    ``ground_truth.npz`` (``motif_names`` (36,), ``user_ids``, ``user_motifs`` (users, 3; -1
    pads), ``item_ids``, ``item_motifs`` (items, 4; -1 pads), ``motif_cells`` (items, 36, 49)
    bool: the 7x7 cells, row-major, where each motif shows on at least 10% of the pixels) and
    ``meta.json`` (the arguments), written last.

    Equal arguments give byte-identical files. About 10 s for the default size on one core.
    `n_users` and `n_items` are at most `LIMIT` (or ``RECSYS_VISUAL_SYNTHETIC_LIMIT=UxI``), else
    a `ParameterError` before anything is written.
    """
    check_size("visual-synthetic", ("users", "items"), (n_users, n_items), LIMIT_ENV, LIMIT)
    if n_users < 1 or n_items < 4 or not 3 <= min_interactions <= max_interactions <= n_items or not 0 <= noise_share < 1:
        raise ParameterError(
            "visual-synthetic needs n_users >= 1, n_items >= 4, 3 <= min_interactions <= max_interactions <= n_items"
            f" and 0 <= noise_share < 1, got {n_users}, {n_items}, {min_interactions}, {max_interactions}, {noise_share}"
        )
    directory = Path(directory)
    params = dict(
        n_users=int(n_users), n_items=int(n_items), min_interactions=int(min_interactions),
        max_interactions=int(max_interactions), affinity=float(affinity),
        popularity_exponent=float(popularity_exponent), noise_share=float(noise_share),
        random_state=int(random_state),
    )  # fmt: skip
    rng = np.random.default_rng(random_state)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        (tmp / "images").mkdir()
        item_motifs, motif_cells = _render_items(rng, n_items, tmp / "images")
        user_motifs = _draw_tastes(rng, n_users)
        frame = _draw_interactions(rng, item_motifs, user_motifs, params)
        frame.to_csv(tmp / "interactions.csv", index=False)
        titles = [", ".join(MOTIFS[m] for m in row if m >= 0) for row in item_motifs]
        pd.DataFrame({"item_id": np.arange(1, n_items + 1), "title": titles}).to_csv(tmp / "items.csv", index=False)
        np.savez_compressed(
            tmp / "ground_truth.npz",
            motif_names=np.array(MOTIFS),
            user_ids=np.arange(1, n_users + 1).astype(str),
            user_motifs=user_motifs,
            item_ids=np.arange(1, n_items + 1).astype(str),
            item_motifs=item_motifs,
            motif_cells=motif_cells,
        )
        meta = {"generator": "visual-synthetic", "version": GENERATOR_VERSION, **params}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        _install(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _install(tmp: Path, directory: Path) -> None:
    """Rename the finished folder into place; a concurrent generator that won keeps its copy."""
    old = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, old)
    try:
        os.replace(tmp, directory)
    except OSError:
        if not (directory / "meta.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: same content
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _render_items(rng: np.random.Generator, n_items: int, images: Path) -> tuple[np.ndarray, np.ndarray]:
    item_motifs = np.full((n_items, 4), -1, np.int16)
    motif_cells = np.zeros((n_items, len(MOTIFS), GRID * GRID), bool)
    for i in range(n_items):
        canvas = _background(rng)
        draw = ImageDraw.Draw(canvas)
        _clutter(rng, draw)
        kinds = rng.choice(len(MOTIFS), size=int(rng.integers(2, 5)), replace=False)
        labels = np.full((IMAGE_SIZE, IMAGE_SIZE), -1, np.int16)
        placed: list[tuple[float, float, float]] = []
        for slot, kind in enumerate(kinds):
            radius = float(rng.uniform(20, 34))
            cx, cy = _place(rng, radius, placed)
            placed.append((cx, cy, radius))
            mask = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
            _draw_shape(ImageDraw.Draw(mask), SHAPES[kind % len(SHAPES)], cx, cy, radius, float(rng.uniform(-12, 12)))
            base = np.array(COLOURS[list(COLOURS)[kind // len(SHAPES)]])
            colour = tuple(int(c) for c in np.clip(base + rng.integers(-12, 13, 3), 0, 255))
            canvas.paste(colour, (0, 0), mask)
            labels[np.asarray(mask) > 0] = slot
        for slot, kind in enumerate(kinds):
            share = (labels == slot).reshape(GRID, CELL, GRID, CELL).mean(axis=(1, 3)).reshape(-1)
            motif_cells[i, kind] = share >= COVER_FRACTION
        # Left to right, top to bottom: the order a title reads the picture in.
        order = np.lexsort(([p[1] for p in placed], [p[0] for p in placed]))
        item_motifs[i, : len(kinds)] = kinds[order]
        canvas.save(images / f"{i + 1}.png", compress_level=1)  # zlib level 1: 6x faster than the default
    return item_motifs, motif_cells


def _background(rng: np.random.Generator) -> Image.Image:
    """A muted base colour with low-frequency blotches, stripes and fine grain."""
    hue, sat, val = rng.random(), rng.uniform(0.03, 0.25), rng.uniform(0.45, 0.85)
    base = np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255.0
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    blotches = (np.asarray(coarse, np.float32) / 255.0 - 0.5) * 50.0
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(8, 40)
    stripes = 10.0 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    grain = rng.normal(0.0, 5.0, (IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    shade = (blotches + stripes + grain)[..., None]
    return Image.fromarray(np.clip(base + shade, 0, 255).astype(np.uint8), "RGB")


def _muted(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.2, 0.9))
    return int(r * 255), int(g * 255), int(b * 255)


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw) -> None:
    for _ in range(int(rng.integers(6, 15))):
        x, y = rng.uniform(0, IMAGE_SIZE, 2)
        if rng.random() < 0.5:
            dx, dy = rng.uniform(-40, 40, 2)
            draw.line([(x, y), (x + dx, y + dy)], fill=_muted(rng), width=int(rng.integers(1, 4)))
        else:
            r = rng.uniform(2, 7)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_muted(rng))


def _place(rng: np.random.Generator, radius: float, placed) -> tuple[float, float]:
    """A centre whose disc does not touch the motifs placed so far (best effort: 200 tries)."""
    margin = radius + 2
    for _ in range(200):
        cx, cy = rng.uniform(margin, IMAGE_SIZE - margin, 2)
        if all((cx - x) ** 2 + (cy - y) ** 2 > (radius + r + 4) ** 2 for x, y, r in placed):
            break
    return float(cx), float(cy)


def _polygon(cx, cy, radii, n, rotation_deg, offset=0.0):
    angles = np.deg2rad(rotation_deg) + offset + np.arange(n) * 2 * np.pi / n
    radii = np.resize(np.asarray(radii, float), n)
    return [(cx + r * np.sin(a), cy - r * np.cos(a)) for r, a in zip(radii, angles)]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, rot: float) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, r * 1.2, 4, rot, np.pi / 4), fill=255)
    elif shape == "diamond":
        draw.polygon(_polygon(cx, cy, [r * 1.15, r * 0.75], 4, rot), fill=255)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, r * 1.15, 3, rot), fill=255)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, [r * 1.2, r * 0.5], 10, rot), fill=255)
    elif shape == "cross":
        w = r * 0.38
        c, s = np.cos(np.deg2rad(rot)), np.sin(np.deg2rad(rot))
        for dx, dy in ((r, w), (w, r)):
            corners = [(-dx, -dy), (dx, -dy), (dx, dy), (-dx, dy)]
            draw.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners], fill=255)
    else:  # pragma: no cover - SHAPES is fixed
        raise ValueError(shape)


def _draw_tastes(rng: np.random.Generator, n_users: int) -> np.ndarray:
    user_motifs = np.full((n_users, 3), -1, np.int16)
    for u in range(n_users):
        k = int(rng.integers(2, 4))
        user_motifs[u, :k] = np.sort(rng.choice(len(MOTIFS), size=k, replace=False))
    return user_motifs


def _draw_interactions(rng, item_motifs, user_motifs, params) -> pd.DataFrame:
    """Each user's items: Gumbel top-k over ``affinity * matches + popularity``, plus a
    `noise_share` of uniform picks among the rest, in random order."""
    n_users, n_items = len(user_motifs), len(item_motifs)
    has = np.zeros((n_items, len(MOTIFS)), np.float32)
    rows, cols = np.nonzero(item_motifs >= 0)
    has[rows, item_motifs[rows, cols]] = 1.0
    likes = np.zeros((n_users, len(MOTIFS)), np.float32)
    rows, cols = np.nonzero(user_motifs >= 0)
    likes[rows, user_motifs[rows, cols]] = 1.0
    popularity = -params["popularity_exponent"] * np.log(rng.permutation(n_items) + 1.0)
    utility = params["affinity"] * (likes @ has.T) + popularity  # (users, items)
    keys = utility + rng.gumbel(size=utility.shape)
    lo, hi = params["min_interactions"], params["max_interactions"]
    counts = np.clip(np.rint(lo * rng.lognormal(0.3, 0.5, n_users)), lo, hi).astype(np.int64)
    order = np.argsort(-keys, axis=1, kind="stable")
    users, items = [], []
    noisy = rng.binomial(counts, params["noise_share"])
    for u in range(n_users):  # a few hundred users: a loop keeps each history's draw readable
        liked = order[u, : counts[u] - noisy[u]]
        impulse = rng.choice(order[u, counts[u] - noisy[u] :], size=noisy[u], replace=False)
        chosen = rng.permutation(np.concatenate([liked, impulse]))
        users.append(np.full(len(chosen), u + 1))
        items.append(chosen + 1)
    users, items = np.concatenate(users), np.concatenate(items)
    start = _START + rng.integers(0, 86_400 * 30, n_users)
    steps = rng.integers(60, 86_400, len(users))
    first = np.cumsum(counts) - counts
    within = np.cumsum(steps) - np.repeat(np.cumsum(steps)[first] - steps[first], counts)
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": start[users - 1] + within})


# ---- loading -------------------------------------------------------------------------------
def load_visual_synthetic(path: Path, spec: str) -> Dataset:
    """``visual-synthetic[:DIR]``: generate the default catalogue into DIR if absent, then read it.

    A folder from an older generator version is regenerated with the sizes it records, but only
    when it holds nothing but the generator's files: a folder of someone else's files is never
    moved aside or deleted, whatever its ``meta.json`` says.
    """
    meta_path = path / "meta.json"
    if path.exists() and not meta_path.is_file():
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        else:
            raise DatasetError(
                f"visual-synthetic: {path} exists but holds no generated dataset (meta.json missing);"
                " remove it or name another folder"
            )
    if not path.exists():
        generate_visual_synthetic(path)
    else:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"visual-synthetic: {meta_path} is corrupt ({exc}); remove the folder to regenerate") from None
        if not isinstance(meta, dict):
            raise DatasetError(f"visual-synthetic: {meta_path} is corrupt (not a JSON object); remove the folder to regenerate")
        if meta.get("version") != GENERATOR_VERSION:
            _check_replaceable(path, meta)
            sizes = {
                k: meta[k] for k in generate_visual_synthetic.__kwdefaults__
                if k in meta and not (meta.get("version", 0) < GENERATOR_VERSION and _OLD_DEFAULTS.get(k) == meta[k])
            }  # fmt: skip
            generate_visual_synthetic(path, **sizes)
    return load_visual(path, spec)


def _check_replaceable(path: Path, meta: dict) -> None:
    """Refuse to regenerate (move aside and delete) a folder the generator did not write."""
    ours = meta.get("generator") == "visual-synthetic" and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in meta.items() if k in _SIZE_KEYS
    )
    if ours:
        images = path / "images"
        ours = {p.name for p in path.iterdir()} <= _GENERATED and (
            not images.exists()
            or (images.is_dir() and all(p.is_file() and p.suffix == ".png" and p.stem.isdigit() for p in images.iterdir()))
        )
    if not ours:
        raise DatasetError(
            f"visual-synthetic: {path} holds files the generator did not write, so it is not regenerated;"
            " remove it or name another folder"
        )


_SIZE_KEYS = set(generate_visual_synthetic.__kwdefaults__)


_VISUAL_NEEDS = "interactions.csv (user_id,item_id[,timestamp]) and images/ named by item id"


def load_visual(path: Path, spec: str) -> Dataset:
    """The VisRec tutorial's folder: ``interactions.csv`` and ``images/<item_id>.<ext>``.

    Items whose image is missing or unreadable are dropped with their interactions and
    reported, never a crash: ``dataset.extras["image_problems"]`` holds ``{"count",
    "missing", "unreadable"}`` (the first few ids of each) and a `UserWarning` says the same in
    one line. ``items.csv`` (item_id,title[,genres]) gives titles; ``ground_truth.npz`` (as
    written by `generate_visual_synthetic`) is aligned to the dataset's indices in
    ``dataset.extras``. The image file of each item is in ``dataset.items["image"]``.
    """
    fmt = spec.partition(":")[0]
    _require_dir(path, fmt, _VISUAL_NEEDS)
    _require_file(path / "interactions.csv", fmt, _VISUAL_NEEDS)
    if not (path / "images").is_dir():
        raise DatasetError(f"{fmt}: folder images/ not found in {path} (the {fmt} format needs {_VISUAL_NEEDS})")
    header = _check_header(path / "interactions.csv", ("user_id", "item_id"))
    kinds = {"user_id": "str", "item_id": "str", "timestamp": "int", "rating": "float"}
    names = tuple(c for c in header if c in kinds)
    frame = _read_table(path / "interactions.csv", _Table(names, tuple(kinds[n] for n in names), ",", header=True))
    frame = frame[list(names)]
    if len(frame) == 0:
        raise DatasetError("interactions.csv: no interactions in the file")
    frame["user_id"] = frame["user_id"].str.strip()
    frame["item_id"] = frame["item_id"].str.strip()

    files = {p.stem: p.name for p in (path / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    missing, unreadable = [], []
    for item in pd.unique(frame["item_id"]):
        name = files.get(item)
        if name is None:
            missing.append(item)
        elif not _readable(path / "images" / name):
            unreadable.append(item)
    bad = missing + unreadable
    problems = {"count": len(bad), "missing": missing[:5], "unreadable": unreadable[:5]}
    if bad:
        frame = frame[~frame["item_id"].isin(bad)]
        warnings.warn(
            f"{fmt}: dropped {len(bad)} item(s) without a readable image"
            f" (missing: {', '.join(missing[:5]) or 'none'}; unreadable: {', '.join(unreadable[:5]) or 'none'})",
            UserWarning,
            stacklevel=2,
        )
        if len(frame) == 0:
            raise DatasetError(f"{fmt}: no item of {path / 'interactions.csv'} has a readable image in images/")

    items = None
    if (path / "items.csv").is_file():
        _check_header(path / "items.csv", ("item_id", "title"))
        items = pd.read_csv(path / "items.csv", dtype=str, keep_default_na=False)
    dataset = from_frames(spec, frame, items, has_ratings="rating" in frame, images_dir=str(path / "images"))
    dataset.items["image"] = [files[i] for i in dataset.item_ids]
    dataset.extras["image_problems"] = problems
    if (path / "ground_truth.npz").is_file():
        dataset.extras.update(_ground_truth(path / "ground_truth.npz", dataset))
    return dataset


def _readable(file: Path) -> bool:
    """Whether Pillow can parse the file's structure (cheap: no full decode)."""
    try:
        with Image.open(file) as im:
            im.verify()
        return True
    except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, ...)
        return False


def _ground_truth(file: Path, dataset: Dataset) -> dict:
    """The generator's arrays re-indexed to the dataset's user and item indices."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            gt = {k: npz[k] for k in npz.files}
        user_pos = {u: j for j, u in enumerate(gt["user_ids"].astype(str))}
        item_pos = {i: j for j, i in enumerate(gt["item_ids"].astype(str))}
        users = np.array([user_pos.get(u, -1) for u in dataset.user_ids])
        items = np.array([item_pos.get(i, -1) for i in dataset.item_ids])
        user_motifs = np.where(users[:, None] >= 0, gt["user_motifs"][users], -1).astype(np.int16)
        item_motifs = np.where(items[:, None] >= 0, gt["item_motifs"][items], -1).astype(np.int16)
        cells = gt["motif_cells"][items] & (items >= 0)[:, None, None]
    except (KeyError, ValueError, OSError) as exc:
        raise DatasetError(f"{file.name}: not a valid ground-truth file ({exc})") from None
    return {
        "motif_names": [str(m) for m in gt["motif_names"]],
        "user_motifs": user_motifs,
        "item_motifs": item_motifs,
        "motif_cells": cells,
    }


def image_path(dataset: Dataset, item_idx: int) -> Path:
    """The image file of an item; `DatasetError` where the dataset has no images or this item
    has no usable one (an attached folder lacked it: see `engine.data.images`)."""
    from engine.data.images import image_file

    file = image_file(dataset, item_idx)
    if file is None:
        raise DatasetError(f"item {dataset.item_ids[int(item_idx)]!r} of {dataset.name!r} has no usable image")
    return file


def load_image(dataset: Dataset, item_idx: int, size: int = IMAGE_SIZE) -> Image.Image:
    """An item's image as RGB, ``size`` x ``size`` (what features see): scaled to fit with its
    aspect ratio kept and centred on neutral grey (`fit_square`); the grey placeholder for an
    item without a usable image."""
    from engine.data.images import image_file, placeholder

    file = image_file(dataset, item_idx)
    if file is None:
        return placeholder(size, size).copy()
    with Image.open(file) as im:
        return fit_square(im.convert("RGB"), size)


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """`image` scaled to fit a ``size`` square with its aspect ratio kept, centred on the
    placeholder's grey: nothing cropped, nothing stretched (a square image is only resized)."""
    from engine.data.images import PLACEHOLDER_GREY

    if image.size == (size, size):
        return image
    scale = size / max(image.size)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    resized = image.resize((width, height), Image.BILINEAR)
    if (width, height) == (size, size):
        return resized
    canvas = Image.new("RGB", (size, size), PLACEHOLDER_GREY)
    canvas.paste(resized, ((size - width) // 2, (size - height) // 2))
    return canvas
