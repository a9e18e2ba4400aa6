"""Time item pictures on a real dataset: scan, thumbnails (cold, then warm) and `patches` features.

    python tools/poster_bench.py --dataset movielens-dslabs --count 3000 [--posters DIR] [--features] [--switch]

Without ``--posters`` it first generates ``--count`` poster-sized (185x278) JPEGs named by the
dataset's most popular item ids into a temporary folder: a gradient, a few coloured shapes
and noise, no text. Prints one JSON object of timings (seconds) and sizes; docs/benchmarks.md
quotes it. ``--switch`` also trains popularity, ALS and BPR (light settings) on the dataset with
its pictures and times the User explorer's script (AppTest, no browser) switching between users
with three lists of pictures, after one warm-up user: the server's share of a switch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import load_dataset  # noqa: E402
from engine.data.images import thumbnail_file  # noqa: E402

WIDTH, HEIGHT = 185, 278


def make_posters(folder: Path, item_ids, seed: int = 0) -> None:
    """One poster-like JPEG per item id: a two-colour gradient, 2-4 shapes, a dark band."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    for item in item_ids:
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        base = (1 - rows) * top + rows * bottom + rng.normal(0, 8, (HEIGHT, WIDTH, 3))
        image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 5))):
            x, y, r = rng.uniform(20, WIDTH - 20), rng.uniform(20, HEIGHT - 60), rng.uniform(10, 40)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        draw.rectangle([0, HEIGHT - 50, WIDTH, HEIGHT], fill=(20, 20, 20))
        image.save(folder / f"{item}.jpg", quality=85)


def time_user_switch(spec: str, data_dir: Path, posters: Path) -> dict:
    """Seconds of the User explorer's script per user switch with three lists of pictures
    (popularity, ALS and BPR, light settings; `tools/user_switch.py`)."""
    from user_switch import USERS, summary, time_user_switch as timed, train_runs

    light = {"popularity": {}, "als": {"factors": 32, "epochs": 5}, "bpr": {"factors": 32, "epochs": 5}}
    runs = train_runs(spec, data_dir, light)
    seconds, at = timed(spec, data_dir, runs, users=USERS[:6], allowed_root=posters)
    pictures = sum(len(node.value) for node in at.image) + len(at.dataframe[0].value["poster"].dropna())
    times = summary(seconds)
    return {"pictures_on_the_page": pictures, "user_switch_seconds": times["each_s"], "user_switch_median": times["median_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-dslabs")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--posters", help="an existing folder of pictures named by item id")
    parser.add_argument("--features", action="store_true", help="also time `patches` component features")
    parser.add_argument("--switch", action="store_true", help="also time the User explorer switching users")
    args = parser.parse_args()

    out: dict = {"dataset": args.dataset}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = load_dataset(args.dataset)
        if args.posters:
            posters = Path(args.posters)
        else:
            popular = base.item_ids[np.argsort(-base.item_popularity(), kind="stable")[: args.count]]
            start = time.perf_counter()
            posters = tmp / "posters"
            make_posters(posters, popular)
            out["generate_seconds"] = round(time.perf_counter() - start, 2)
        files = [p for p in posters.iterdir() if p.is_file()]
        out["pictures"] = len(files)
        out["picture_kb_mean"] = round(sum(p.stat().st_size for p in files) / max(1, len(files)) / 1024, 1)

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # items without a picture: expected here
            ds = load_dataset(f"{args.dataset}+images:{posters}")
        out["load_with_pictures_seconds"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        load_dataset(args.dataset)
        out["load_without_seconds"] = round(time.perf_counter() - start, 2)
        with_picture = np.flatnonzero(ds.items["image"].to_numpy() != "")
        out["items_with_picture"] = int(len(with_picture))

        cache = tmp / "thumbnails"
        start = time.perf_counter()
        made = [thumbnail_file(ds, int(i), cache) for i in with_picture]
        out["thumbnails_cold_seconds"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        for i in with_picture:
            thumbnail_file(ds, int(i), cache)
        out["thumbnails_warm_seconds"] = round(time.perf_counter() - start, 3)
        out["thumbnail_kb_mean"] = round(float(np.mean([p.stat().st_size for p in made])) / 1024, 2)

        if args.features:
            from engine.data.components import component_features

            start = time.perf_counter()
            features = component_features(ds, "patches", cache_dir=tmp / "features")
            out["patches_seconds"] = round(time.perf_counter() - start, 1)
            out["patches_shape"] = list(features.shape)
        if args.switch:
            out.update(time_user_switch(f"{args.dataset}+images:{posters}", tmp, posters))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
