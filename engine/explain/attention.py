"""Reading and checking attention: fidelity against ground truth, and image overlays.

On a dataset whose generator recorded the truth (``visual-synthetic``: each user's preferred
motifs and the 7x7 cells each motif covers), a model's attention can be scored:

``attention.component_lift``
    beta mass on the cells covered by the user's preferred motifs, divided by those cells'
    share of the grid, averaged over (test user, profile item) pairs whose item shows such a
    motif. 1.0 is no better than uniform; 49 / covered cells is the most possible.
``attention.item_auc``
    AUC of alpha separating a user's profile items that show a preferred motif from those that
    do not, averaged over test users whose profile has both kinds. 0.5 is chance.

`attention_overlay` draws a 7x7 attention grid over an image, for the dashboard.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.data.dataset import Dataset
from engine.data.split import Split
from engine.errors import EngineError

# Anchors of matplotlib's "inferno" (perceptually uniform, readable in greyscale), at 0, 1/8, ...
_INFERNO = np.array(
    [
        (0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
        (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164),
    ],
    np.float32,
)  # fmt: skip


def component_lift(beta: np.ndarray, covered: np.ndarray) -> float:
    """Mean over rows of ``beta[covered].sum() / (covered.sum() / cells)``.

    Parameters
    ----------
    beta : (n, cells) attention distributions (each row sums to 1).
    covered : (n, cells) bool, the true cells of each row; rows with none are skipped.

    Returns
    -------
    float, NaN when no row has a covered cell. 1.0 for uniform attention.
    """
    beta = np.asarray(beta, np.float64).reshape(len(beta), -1)
    covered = np.asarray(covered, bool).reshape(beta.shape)
    n_cov = covered.sum(1)
    rows = n_cov > 0
    if not rows.any():
        return float("nan")
    mass = (beta[rows] * covered[rows]).sum(1)
    return float(np.mean(mass / (n_cov[rows] / beta.shape[1])))


def item_auc(alpha: np.ndarray, relevant: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean per-row AUC of `alpha` ranking `relevant` entries above the others (ties count 1/2).

    Parameters
    ----------
    alpha : (n, P) attention over each user's profile.
    relevant : (n, P) bool, profile items that show a preferred motif.
    valid : (n, P) bool, real (not padded) profile entries; default all.

    Returns
    -------
    float, NaN when no row has both relevant and other valid entries. 0.5 for uniform alpha.
    """
    alpha = np.asarray(alpha, np.float64)
    relevant = np.asarray(relevant, bool)
    valid = np.ones(alpha.shape, bool) if valid is None else np.asarray(valid, bool)
    pos = relevant & valid
    neg = ~relevant & valid
    rows = pos.any(1) & neg.any(1)
    if not rows.any():
        return float("nan")
    a, pos, neg = alpha[rows], pos[rows], neg[rows]
    # All (positive, negative) pairs of a row: P is small (the profile), so (n, P, P) is cheap.
    greater = (a[:, :, None] > a[:, None, :]) + 0.5 * (a[:, :, None] == a[:, None, :])
    pairs = pos[:, :, None] & neg[:, None, :]
    auc = (greater * pairs).sum((1, 2)) / pairs.sum((1, 2))
    return float(auc.mean())


def has_ground_truth(dataset: Dataset) -> bool:
    """Whether the dataset records preferred motifs and motif cells (visual-synthetic)."""
    return all(k in dataset.extras for k in ("user_motifs", "motif_cells"))


def has_attention(model) -> bool:
    """Whether `model` exposes attention: the ability its class declares
    (`Recommender.has_attention`). An object that is not a `Recommender` (a hand-written
    stand-in, as in the tests) counts when it has an ``attention`` method."""
    return bool(getattr(model, "has_attention", hasattr(model, "attention")))


def attention_fidelity(model, dataset: Dataset, test_split: Split) -> dict:
    """``{"attention.component_lift", "attention.item_auc", "attention.users"}`` for a model
    with an ``attention(user_idx)`` method, over the users of `test_split`.

    Raises
    ------
    EngineError : the dataset has no ground truth, or the model no attention.
    """
    if not has_ground_truth(dataset):
        raise EngineError(f"dataset {dataset.name!r} has no attention ground truth (only visual-synthetic does)")
    if not has_attention(model):
        raise EngineError(f"model {getattr(model, 'name', type(model).__name__)!r} exposes no attention")
    user_motifs = np.asarray(dataset.extras["user_motifs"])
    cells = np.asarray(dataset.extras["motif_cells"])  # (items, motifs, 49)
    betas, covers, alphas, relevants = [], [], [], []
    users = np.unique(test_split.user_idx)
    width = 1
    for u in users:
        att = model.attention(int(u))
        liked = user_motifs[u][user_motifs[u] >= 0]
        items = np.array([i for i, _ in att["profile"]], np.int64)
        if len(items) == 0:
            continue
        true_cells = cells[items][:, liked].any(1)  # (P, 49): cells of the user's motifs
        for i, cov in zip(items, true_cells):
            if int(i) in att["components"]:
                betas.append(np.asarray(att["components"][int(i)]).reshape(-1))
                covers.append(cov)
        width = max(width, len(items))
        alphas.append(np.array([a for _, a in att["profile"]]))
        relevants.append(true_cells.any(1))
    if not alphas:
        return {"attention.component_lift": float("nan"), "attention.item_auc": float("nan"), "attention.users": 0}
    pad = np.zeros((len(alphas), width))
    rel = np.zeros((len(alphas), width), bool)
    valid = np.zeros((len(alphas), width), bool)
    for r, (a, rl) in enumerate(zip(alphas, relevants)):
        pad[r, : len(a)], rel[r, : len(a)], valid[r, : len(a)] = a, rl, True
    lift = component_lift(np.array(betas), np.array(covers)) if betas else float("nan")
    return {
        "attention.component_lift": lift,
        "attention.item_auc": item_auc(pad, rel, valid),
        "attention.users": int(len(alphas)),
    }


def attention_overlay(image: Image.Image, beta, *, opacity: float = 0.5) -> Image.Image:
    """`image` with the attention grid `beta` drawn over it as a heatmap.

    The grid (e.g. 7x7, any shape) is scaled to [0, 1] by its maximum, upsampled bilinearly to
    the image size, coloured with the perceptually uniform "inferno" map and alpha-blended with
    the image at `opacity`. Returns an RGB image of the input's size.
    """
    grid = np.asarray(beta, np.float32)
    if grid.ndim == 1:
        side = int(round(np.sqrt(grid.size)))
        if side * side != grid.size:
            raise EngineError(f"attention of {grid.size} cells is not a square grid; pass it as rows x columns")
        grid = grid.reshape(side, side)
    if grid.ndim != 2 or not np.isfinite(grid).all():
        raise EngineError(f"attention must be a finite 2-d grid, got shape {grid.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise EngineError(f"opacity must be in [0, 1], got {opacity}")
    base = image.convert("RGB")
    top = float(grid.max())
    scaled = np.clip(grid - min(0.0, float(grid.min())), 0, None) / top if top > 0 else np.zeros_like(grid)
    # Pixel centres sample the grid bilinearly: PIL's float resize does exactly that.
    heat = np.asarray(Image.fromarray(scaled.astype(np.float32), "F").resize(base.size, Image.BILINEAR))
    heat = np.clip(heat, 0.0, 1.0) * (len(_INFERNO) - 1)
    low = np.floor(heat).astype(int).clip(0, len(_INFERNO) - 2)
    frac = (heat - low)[..., None]
    colour = _INFERNO[low] * (1 - frac) + _INFERNO[low + 1] * frac
    out = np.asarray(base, np.float32) * (1 - opacity) + colour * opacity
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def users_tested_first(dataset: Dataset, test_split: Split) -> list[str]:
    """Raw ids of the users with a test item in `test_split` (the ones `attention_fidelity`
    averages over), in dataset order, followed by the rest."""
    tested = np.zeros(dataset.n_users, bool)
    tested[test_split.user_idx] = True
    return [*dataset.user_ids[tested].tolist(), *dataset.user_ids[~tested].tolist()]


def user_attention(model, dataset: Dataset, user_idx: int, recommendations: tuple[np.ndarray, np.ndarray]) -> dict:
    """One user's attention, ready to draw, with the user's list (`engine.explore.query.recommend_for`).

    Returns ``{"profile": [{"item", "title", "alpha", "beta" (7x7 or None), "truth" (7x7 bool or
    None), "motifs" (names), "liked" (bool or None)}], "liked_motifs": names or None,
    "recommendations": [{"item", "title", "score", "motifs", "liked"}], "fidelity": {"item_auc",
    "component_lift"} for this user (NaN where undefined) or None}``. `truth`, `motifs` and
    `liked` exist on a dataset with ground truth (visual-synthetic) only.
    """
    att = model.attention(int(user_idx))
    recs, scores = recommendations
    truth = has_ground_truth(dataset)
    names = dataset.extras.get("motif_names", [])
    liked = []
    if truth:
        liked = [int(m) for m in dataset.extras["user_motifs"][user_idx] if m >= 0]

    def motifs(item: int) -> list[int]:
        if "item_motifs" not in dataset.extras:
            return []
        return [int(m) for m in dataset.extras["item_motifs"][item] if m >= 0]

    profile = []
    for item, alpha in att["profile"]:
        beta = att["components"].get(item)
        cells = None
        if truth:  # the true cells: where this item shows one of the user's motifs
            cells = dataset.extras["motif_cells"][item][liked].any(0)
            cells = cells.reshape(beta.shape if beta is not None else (7, 7))
        profile.append({
            "item": item, "title": dataset.title(item), "alpha": alpha, "beta": beta, "truth": cells,
            "motifs": [names[m] for m in motifs(item)],
            "liked": bool(set(motifs(item)) & set(liked)) if truth else None,
        })  # fmt: skip
    recommendations = [
        {"item": int(i), "title": dataset.title(i), "score": float(s), "motifs": [names[m] for m in motifs(i)],
         "liked": bool(set(motifs(i)) & set(liked)) if truth else None}
        for i, s in zip(recs, scores)
    ]  # fmt: skip
    fidelity = None
    if truth and profile:
        alpha = np.array([[p["alpha"] for p in profile]])
        relevant = np.array([[p["liked"] for p in profile]])
        with_beta = [p for p in profile if p["beta"] is not None]
        lift = float("nan")
        if with_beta:
            lift = component_lift(
                np.array([p["beta"].reshape(-1) for p in with_beta]), np.array([p["truth"].reshape(-1) for p in with_beta])
            )
        fidelity = {"item_auc": item_auc(alpha, relevant), "component_lift": lift}
    return {
        "profile": profile,
        "liked_motifs": [names[m] for m in liked] if truth else None,
        "recommendations": recommendations,
        "fidelity": fidelity,
    }
