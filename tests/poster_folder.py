"""A poster-like folder of pictures the tests make, next to a small ratings CSV naming the items.

`write_posters` writes pictures named by raw item id in every accepted format and in mixed
sizes and aspect ratios (a 185x278 poster, a wide photo, a tiny square), plus the problems a
real folder has: an item with no file, a corrupt file, a truncated JPEG, a file that is not a
picture and a subfolder. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: item id -> (width, height, suffix) of the good pictures.
GOOD = {
    "1": (185, 278, ".jpg"),
    "2": (300, 200, ".png"),
    "3": (40, 40, ".webp"),
    "4": (185, 278, ".jpeg"),
    "5": (500, 750, ".JPG"),
}
MISSING = ["6"]  # no file at all
CORRUPT = ["7"]  # garbage under a picture's name
TRUNCATED = ["8"]  # a JPEG cut short
ITEMS = [*GOOD, *MISSING, *CORRUPT, *TRUNCATED]
NOT_IMAGES = ["notes.txt", "subfolder"]


def poster(width: int, height: int, seed: int) -> Image.Image:
    """A poster-like picture: a vertical gradient, a band of colour and noise."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 200, height)[:, None, None]
    colour = rng.integers(0, 256, 3)[None, None, :]
    array = 0.6 * rows + 0.4 * colour + rng.normal(0, 12, (height, width, 3))
    array[height // 3 : height // 2] = colour
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def extra_items(extra: int) -> list[str]:
    """Ids of `extra` more items with good small posters (``"9"``, ``"10"``, ...)."""
    return [str(n) for n in range(len(ITEMS) + 1, len(ITEMS) + 1 + extra)]


def write_posters(folder: Path, extra: int = 0) -> Path:
    """Write the picture folder (see the module docstring), with `extra` more items' 60x90
    JPEGs, and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, item in enumerate(extra_items(extra)):
        poster(60, 90, 100 + n).save(folder / f"{item}.jpg", quality=80)
    for seed, (item, (width, height, suffix)) in enumerate(GOOD.items()):
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[suffix.lower()]
        poster(width, height, seed).save(folder / f"{item}{suffix}", format=fmt)
    (folder / f"{CORRUPT[0]}.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really a picture")
    full = folder / "tmp.jpg"
    poster(185, 278, 99).save(full, quality=90)
    (folder / f"{TRUNCATED[0]}.jpg").write_bytes(full.read_bytes()[:1500])
    full.unlink()
    (folder / "notes.txt").write_text("posters from the attic\n")
    (folder / "subfolder").mkdir(exist_ok=True)
    return folder


def write_ratings(file: Path, users: int = 6, extra: int = 0, per_user: int | None = None) -> Path:
    """A ratings CSV over `ITEMS` and `extra` more items: each user rates `per_user` of them
    (default two thirds), drawn with a popularity skew from a seeded generator."""
    items = [*ITEMS, *extra_items(extra)]
    per_user = per_user or (2 * len(items)) // 3
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, len(items) + 1) ** 0.7
    lines = ["user,item,rating"]
    for user in range(1, users + 1):
        for n in rng.choice(len(items), size=per_user, replace=False, p=weights / weights.sum()):
            lines.append(f"{user},{items[n]},{int(rng.integers(1, 6))}")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("\n".join(lines) + "\n")
    return file
