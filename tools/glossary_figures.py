"""Draw the glossary's pictures: docs/glossary/*.png, shown by docs/glossary.md and the Glossary page.

Each picture is a schematic of one idea (the split, a hit's worth by rank, early stopping, causal
self-attention, scores as dot products, cosine similarity, the overlap of two lists, item neighbours,
genres kept together, popularity bias, chance), drawn from a few fixed numbers, so a student can look before reading. Run it
after changing one and commit the PNGs:

    python tools/glossary_figures.py            # writes docs/glossary/
    python tools/glossary_figures.py --out DIR  # somewhere else
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "glossary"
#: The app's colours: training blue, validation amber, the held-out test item green (as its
#: badge on the User explorer), what is not used grey.
TRAIN, VALIDATION, TEST, MUTED, INK = "#4c78a8", "#f2a541", "#3a9d5d", "#c9c9c9", "#31333f"
DPI = 110


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK, labelsize=9)
    ax.yaxis.label.set_color(INK)
    ax.xaxis.label.set_color(INK)


def leave_last_out(path: Path) -> None:
    """Three users' histories in time order: the last item is the test item, the one before it
    the validation item, the rest training; a user with fewer than 3 items trains only."""
    users = [("user A", 9), ("user B", 5), ("user C", 2)]
    fig, ax = plt.subplots(figsize=(7.2, 2.3), dpi=DPI)
    for row, (name, n) in enumerate(users):
        y = len(users) - 1 - row
        ax.text(-0.3, y, name, ha="right", va="center", fontsize=10, color=INK)
        for t in range(n):
            colour = TRAIN
            if n >= 3 and t == n - 1:
                colour = TEST
            elif n >= 3 and t == n - 2:
                colour = VALIDATION
            ax.add_patch(FancyBboxPatch((t + 0.08, y - 0.32), 0.84, 0.64, boxstyle="round,pad=0,rounding_size=0.12",
                                        facecolor=colour, edgecolor="white"))  # fmt: skip
        if n < 3:
            ax.text(n + 0.2, y, "fewer than 3 items: training only", va="center", fontsize=9, color=INK, style="italic")
    ax.annotate("", xy=(9.3, -0.75), xytext=(0, -0.75), arrowprops={"arrowstyle": "->", "color": INK})
    ax.text(9.35, -0.75, "time", va="center", fontsize=9, color=INK)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (TRAIN, VALIDATION, TEST)]
    ax.legend(handles, ["training", "validation (when to stop)", "test (the metrics)"], loc="upper center",
              bbox_to_anchor=(0.5, 1.22), ncol=3, frameon=False, fontsize=9)  # fmt: skip
    ax.set_xlim(-1.6, 10)
    ax.set_ylim(-1.0, len(users) - 0.4)
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def ndcg_discount(path: Path) -> None:
    """What one hit is worth at each rank of the top 10: 1 / log2(rank + 1) for NDCG, 1 for HR."""
    ranks = list(range(1, 11))
    worth = [1 / math.log2(r + 1) for r in ranks]
    fig, ax = plt.subplots(figsize=(7.2, 2.6), dpi=DPI)
    bars = ax.bar(ranks, worth, color=TRAIN, width=0.7, label="NDCG@10: 1 / log2(rank + 1)")
    ax.plot([0.5, 10.5], [1, 1], color=TEST, linewidth=2, label="HR@10: 1 anywhere in the top 10")
    for bar, w in zip(bars, worth):
        ax.text(bar.get_x() + bar.get_width() / 2, w + 0.03, f"{w:.2f}", ha="center", fontsize=8, color=INK)
    ax.bar([11.5], [0], width=0.7)
    ax.text(11.5, 0.05, "rank 11+\n0", ha="center", fontsize=8, color=INK)
    ax.set_xticks(ranks)
    ax.set_xlim(0.4, 12.2)
    ax.set_ylim(0, 1.25)
    ax.set_xlabel("rank of the held-out item in the user's list")
    ax.set_ylabel("what the hit is worth")
    ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.62), frameon=False, fontsize=9)  # below the HR line
    _style(ax)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def early_stopping(path: Path) -> None:
    """An illustrative fit: training loss keeps falling, validation NDCG@10 (checked every 2
    epochs) peaks at epoch 8, three checks in a row do not beat it, training stops at 14 and
    the weights of epoch 8 are kept."""
    epochs = list(range(1, 15))
    loss = [0.9 * 0.86**e + 0.12 for e in epochs]
    checks = [2, 4, 6, 8, 10, 12, 14]
    val = [0.020, 0.031, 0.037, 0.041, 0.0395, 0.0385, 0.037]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 2.6), dpi=DPI)
    left.plot(epochs, loss, color="#8a8a8a", marker="o", markersize=3)
    left.set_title("training loss: keeps falling", fontsize=10, color=INK, loc="left")
    left.set_xlabel("epoch")
    right.plot(checks, val, color=TRAIN, marker="o", markersize=4)
    right.axvline(8, color=TEST, linestyle="--", linewidth=1.5)
    right.text(8.2, 0.0215, "kept: epoch 8", color=TEST, fontsize=9)
    right.axvspan(9, 14.4, color=MUTED, alpha=0.35, linewidth=0)
    right.text(11.7, 0.0255, "3 checks\nwithout a\nnew best:\nstop", ha="center", fontsize=8, color=INK)
    right.set_title("validation NDCG@10: peaks, then falls", fontsize=10, color=INK, loc="left")
    right.set_xlabel("epoch")
    right.set_ylim(0.015, 0.045)
    for ax in (left, right):
        ax.set_xticks([2, 4, 6, 8, 10, 12, 14])
        ax.set_xlim(0.5, 14.5)
        _style(ax)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def causal_attention(path: Path) -> None:
    """Causal self-attention over a history of 6 items: each position mixes itself and the
    items before it (weights summing to 1 along a row), never the later ones; the last row is
    the strip the User explorer shows."""
    n = 6
    weights = [[0.0] * n for _ in range(n)]
    for i in range(n):  # illustrative weights: recent items count more, each row sums to 1
        raw = [1.6 ** (j - i) * (1.8 if j == 1 else 1.0) for j in range(i + 1)]
        weights[i][: i + 1] = [r / sum(raw) for r in raw]
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=DPI)
    for i in range(n):
        for j in range(n):
            if j > i:
                ax.add_patch(plt.Rectangle((j, n - 1 - i), 1, 1, facecolor="#f2f2f2", edgecolor="white", hatch="///"))
                continue
            w = weights[i][j]
            ax.add_patch(plt.Rectangle((j, n - 1 - i), 1, 1, facecolor=TRAIN, alpha=0.15 + 0.85 * w, edgecolor="white"))
            ax.text(j + 0.5, n - 0.5 - i, f"{w:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if w > 0.45 else INK)  # fmt: skip
    ax.add_patch(plt.Rectangle((0, 0), n, 1, fill=False, edgecolor=TEST, linewidth=2.2))
    ax.text(n + 0.15, 0.5, "the newest item's row:\nthe strip on the\nUser explorer", va="center", fontsize=8, color=TEST)
    ax.text(n + 0.15, n - 1.5, "later items:\nnever looked at\n(the future)", va="center", fontsize=8, color=INK)
    ax.set_xticks([j + 0.5 for j in range(n)], [f"item {j + 1}" for j in range(n)], fontsize=8)
    ax.set_yticks([n - 0.5 - i for i in range(n)], [f"item {i + 1}" for i in range(n)], fontsize=8)
    ax.set_xlabel("looks at (oldest to newest)", color=INK, fontsize=9)
    ax.set_ylabel("position", color=INK, fontsize=9)
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    ax.set_aspect("equal")
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(length=0, colors=INK)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def embedding_scores(path: Path) -> None:
    """A user's vector and three items' vectors in two dimensions: each item's score is its dot
    product with the user, the user's length times the length of the item's shadow on the
    user's direction; the list is the items by that score."""
    user = (2.0, 1.0)
    items = {"Toy Story": (1.7, 1.5), "Heat": (2.2, -0.9), "Babe": (-0.9, 1.3)}
    colours = {"Toy Story": TEST, "Heat": TRAIN, "Babe": MUTED}
    fig, (ax, side) = plt.subplots(1, 2, figsize=(7.4, 2.7), dpi=DPI, gridspec_kw={"width_ratios": [1.5, 1]})
    ax.annotate("", xy=user, xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": VALIDATION, "linewidth": 2.5})
    ax.text(user[0] + 0.08, user[1] - 0.05, "the user", fontsize=9, color=VALIDATION, va="top")
    norm = math.hypot(*user)
    for name, (x, y) in items.items():
        ax.annotate("", xy=(x, y), xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": colours[name], "linewidth": 1.8})
        ax.text(x + 0.06, y + 0.06, name, fontsize=9, color=INK)
        along = (x * user[0] + y * user[1]) / norm**2  # the item's shadow on the user's direction
        ax.plot([x, along * user[0]], [y, along * user[1]], linestyle=":", color=colours[name], linewidth=1)
    ax.plot([0], [0], "o", color=INK, markersize=3)
    ax.set_xlim(-1.3, 3.1)
    ax.set_ylim(-1.2, 1.9)
    ax.set_aspect("equal")
    ax.axis("off")
    scores = sorted(((x * user[0] + y * user[1], name) for name, (x, y) in items.items()), reverse=True)
    side.set_title("score = dot product,\nthe user's list", fontsize=10, color=INK, loc="left")
    for rank, (score, name) in enumerate(scores):
        side.barh(rank, score, color=colours[name], height=0.6)
        side.text(max(score, 0) + 0.1, rank, f"{name}  {score:.1f}", va="center", fontsize=9, color=INK)
    side.axvline(0, color=INK, linewidth=0.8)
    side.set_ylim(len(scores) - 0.4, -0.6)
    side.set_xlim(min(0, scores[-1][0]) - 0.3, scores[0][0] + 3.2)
    side.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def cosine_similarity(path: Path) -> None:
    """Three item vectors from the origin: two pointing almost the same way (cosine near 1,
    whatever their lengths), one at nearly a right angle to them (cosine near 0)."""
    star_wars, empire, sense = (2.6, 1.5), (1.6, 0.62), (-0.6, 1.45)
    fig, ax = plt.subplots(figsize=(7.2, 2.6), dpi=DPI)
    for (x, y), colour in ((star_wars, TRAIN), (empire, TRAIN), (sense, VALIDATION)):
        ax.annotate("", xy=(x, y), xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 2})
    ax.text(2.7, 1.55, "Star Wars", fontsize=9, color=INK)
    ax.text(1.7, 0.45, "The Empire Strikes Back", fontsize=9, color=INK)
    ax.text(-0.6, 1.57, "Sense and Sensibility", fontsize=9, color=INK, ha="center")
    ax.plot([0], [0], "o", color=INK, markersize=3)

    def cosine(a, b):
        return (a[0] * b[0] + a[1] * b[1]) / (math.hypot(*a) * math.hypot(*b))

    ax.text(5.0, 1.25, f"Star Wars and The Empire Strikes Back:\ncosine {cosine(star_wars, empire):.2f}, almost the same "
            "direction\n(their lengths do not count)", fontsize=9, color=TRAIN, va="center")  # fmt: skip
    ax.text(5.0, 0.35, f"Star Wars and Sense and Sensibility:\ncosine {cosine(star_wars, sense):.2f}, "
            "far apart", fontsize=9, color=VALIDATION, va="center")  # fmt: skip
    ax.set_xlim(-2.0, 8.4)
    ax.set_ylim(-0.15, 1.8)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def topk_overlap(path: Path) -> None:
    """Two models' top-10 lists for one user with the 3 shared items marked: overlap 3/10."""
    a = ["Seven", "Fargo", "Babe", "Heat", "Big", "Ghost", "Speed", "Nell", "Crumb", "Alien"]
    b = ["Fargo", "Clerks", "Heat", "Casper", "Casino", "Alien", "Jaws", "Kids", "Rudy", "Friday"]
    shared = set(a) & set(b)
    fig, ax = plt.subplots(figsize=(7.2, 1.9), dpi=DPI)
    for row, (name, items) in enumerate((("model A", a), ("model B", b))):
        y = 1 - row
        ax.text(-0.2, y, name, ha="right", va="center", fontsize=10, color=INK)
        for t, item in enumerate(items):
            colour = TEST if item in shared else MUTED
            ax.add_patch(FancyBboxPatch((t + 0.05, y - 0.32), 0.9, 0.64, boxstyle="round,pad=0,rounding_size=0.1",
                                        facecolor=colour, edgecolor="white"))  # fmt: skip
            ax.text(t + 0.5, y, item, ha="center", va="center", fontsize=7.5, color="white" if item in shared else INK)
    ax.text(10.2, 0.5, f"overlap\n{len(shared)} / 10 = {len(shared) / 10:.0%}", va="center", fontsize=10, color=TEST)
    ax.set_xlim(-1.4, 11.6)
    ax.set_ylim(-0.5, 1.5)
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def item_neighbours(path: Path) -> None:
    """Who chose what, six users and four films: Star Wars and The Empire Strikes Back share
    four users (cosine 0.89), Star Wars and Sense and Sensibility one (0.29); item kNN keeps the
    films with the highest such similarity as each film's neighbours."""
    films = ["Star Wars", "The Empire\nStrikes Back", "Sense and\nSensibility", "Fargo"]
    chose = [  # users x films
        [1, 1, 0, 1],
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [1, 1, 0, 1],
        [0, 0, 1, 1],
        [0, 1, 1, 0],
    ]
    STEP = 1.9  # a column's width: room for the two-line titles above it
    fig, ax = plt.subplots(figsize=(7.2, 3.0), dpi=DPI)
    for u, row in enumerate(chose):
        y = len(chose) - 1 - u
        ax.text(-0.15, y, f"user {u + 1}", ha="right", va="center", fontsize=9, color=INK)
        for f, value in enumerate(row):
            both = value and row[0] and f in (0, 1) and row[1]
            colour = TEST if both else (TRAIN if value else "#f0f2f6")
            ax.add_patch(FancyBboxPatch((STEP * f + 0.06, y - 0.38), STEP - 0.12, 0.76,
                                        boxstyle="round,pad=0,rounding_size=0.1", facecolor=colour, edgecolor="white"))
    for f, name in enumerate(films):
        ax.text(STEP * (f + 0.5), len(chose) - 0.45, name, ha="center", va="bottom", fontsize=8, color=INK)

    def cosine(a, b):
        shared = sum(r[a] and r[b] for r in chose)
        return shared, shared / math.sqrt(sum(r[a] for r in chose) * sum(r[b] for r in chose))

    shared, sim = cosine(0, 1)
    ax.text(8.0, 3.9, f"Star Wars and The Empire Strikes Back:\n{shared} users chose both (green): similarity "
            f"{sim:.2f}", fontsize=9, color=TEST, va="center")  # fmt: skip
    shared, sim = cosine(0, 2)
    ax.text(8.0, 2.3, f"Star Wars and Sense and Sensibility:\n{shared} user chose both: similarity {sim:.2f}",
            fontsize=9, color=INK, va="center")  # fmt: skip
    ax.text(8.0, 0.8, "similarity = users who chose both,\nscaled by how popular each film is (cosine)",
            fontsize=8.5, color=INK, va="center", style="italic")  # fmt: skip
    ax.set_xlim(-1.4, 14.2)
    ax.set_ylim(-0.6, len(chose) + 0.6)
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def genres_together(path: Path) -> None:
    """Films as points of an embedding, Animation coloured: one animated film's 10 nearest
    neighbours circled, 8 of them animated, where 1 film in 10 is animated overall."""
    import numpy as np

    rng = np.random.default_rng(4)
    others = rng.normal(0, 1.0, (90, 2)) * [1.5, 0.9] + [-0.6, 0]
    animated = rng.normal(0, 0.6, (10, 2)) * [1.0, 0.7] + [3.0, 0.5]
    animated[0] = [3.0, 0.5]  # the film whose neighbours are counted
    points = np.vstack([animated, others])
    is_animated = np.arange(len(points)) < len(animated)
    distance = np.linalg.norm(points - points[0], axis=1)
    nearest = np.argsort(distance)[1:11]
    together = int(is_animated[nearest].sum())
    fig, ax = plt.subplots(figsize=(7.2, 3.0), dpi=DPI)
    ax.scatter(*points[~is_animated].T, s=16, color=MUTED, label="other films")
    ax.scatter(*points[is_animated].T, s=22, color=TRAIN, label="Animation")
    ax.scatter(*points[nearest].T, s=90, facecolors="none", edgecolors=TEST, linewidths=1.4,
               label="its 10 nearest neighbours")  # fmt: skip
    ax.scatter(*points[0], s=70, color=TRAIN, edgecolors=INK, linewidths=1.2, zorder=3)
    ax.annotate("one animated film", points[0], xytext=(points[0][0] + 1.2, points[0][1] + 1.4), fontsize=9,
                color=INK, arrowprops={"arrowstyle": "->", "color": INK})  # fmt: skip
    ax.text(5.0, -0.9, f"{together} of its 10 neighbours\nare animated too,\nwhere 1 film in 10 is:\n"
            "the model keeps Animation together", fontsize=9, color=TEST, va="center")  # fmt: skip
    ax.legend(loc="upper left", bbox_to_anchor=(0, 1.12), ncol=3, frameon=False, fontsize=8.5)
    ax.set_xlim(-6.0, 8.4)
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def popularity_bias(path: Path) -> None:
    """The demo's figures (movielens-dslabs, quick runs): the share of each run's top-10 lists
    from the 91 most popular films, against the films users really chose next."""
    rows = [("ALS (NDCG@10 0.040)", 0.60, TRAIN), ("SASRec (NDCG@10 0.043)", 0.20, TRAIN),
            ("what users chose next", 0.15, MUTED)]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.2, 1.9), dpi=DPI)
    for y, (name, share, colour) in enumerate(reversed(rows)):
        ax.barh(y, share, color=colour, height=0.6)
        ax.text(share + 0.01, y, f"{share:.0%}", va="center", fontsize=9, color=INK)
    ax.set_yticks(range(len(rows)), [name for name, _, _ in reversed(rows)])
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("share of the items from the 91 most popular films (1% of the catalogue)", fontsize=9)
    _style(ax)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def chance_level(path: Path) -> None:
    """About 9,000 candidate films as a grid, ten of them drawn at random for a top 10 and the
    one the user chose next: chance is 10 in 9,000, not a tenth."""
    rows, cols = 60, 150  # 9,000 candidates
    rng = random.Random(4)
    cells = rng.sample(range(rows * cols), 11)
    listed, chosen = cells[:10], cells[10]
    fig, ax = plt.subplots(figsize=(7.2, 3.2), dpi=DPI)
    ax.scatter([c % cols for c in range(rows * cols)], [c // cols for c in range(rows * cols)], s=1.2, color=MUTED,
               marker="s", linewidths=0)
    ax.scatter([c % cols for c in listed], [c // cols for c in listed], s=38, color=TRAIN, marker="s",
               label="a random top 10")
    ax.scatter([chosen % cols], [chosen // cols], s=60, color=TEST, marker="*", label="the film they chose next")
    ax.set_xlim(-1, cols)
    ax.set_ylim(rows, -1)
    ax.set_axis_off()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), ncol=2, frameon=False, fontsize=9)
    ax.set_title("9,000 films the user has not seen: ten drawn at random hold the next one for 1 user in 900",
                 fontsize=9, color=INK)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


FIGURES = {
    "leave-last-out.png": leave_last_out,
    "ndcg-discount.png": ndcg_discount,
    "early-stopping.png": early_stopping,
    "causal-attention.png": causal_attention,
    "embedding-scores.png": embedding_scores,
    "cosine-similarity.png": cosine_similarity,
    "topk-overlap.png": topk_overlap,
    "item-neighbours.png": item_neighbours,
    "genres-together.png": genres_together,
    "popularity-bias.png": popularity_bias,
    "chance-level.png": chance_level,
}


def draw_all(out: Path) -> list[Path]:
    """Every picture into `out` (created); returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        draw(out / name)
        written.append(out / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for path in draw_all(args.out):
        print(path)


if __name__ == "__main__":
    main()
