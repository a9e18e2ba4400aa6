"""What every torch-module model shares: building the module, the device, scoring and restoring.

A neural model subclasses `NeuralRecommender`, writes `_build_module` (an ``nn.Module`` whose
``forward(users, items)`` returns one logit per pair; a module that is also an
`engine.models.item_side.RowScorer` scores full rows with its item-side work computed once
per set of weights) and `_train` (usually one call of
`engine.models.training.train_module`). The learned module lives in ``module_`` and is saved by the
base class as a state dict; `_load_modules` rebuilds it from the hyperparameters.
After cornac's split of ``models/ncf/recom_*.py`` (wrapper) from ``backend_pt.py`` (module).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.device import resolve_device
from engine.errors import CheckpointError, ParameterError
from engine.models.base import Callback, Recommender
from engine.models.item_side import RowScorer
from engine.models.params import EVAL_EVERY, PATIENCE, Param  # noqa: F401 - the neural models import them here
from engine.models.training import TrainResult, TrainSettings, seeded

# One scoring chunk holds at most this many (user, item) pairs: with hidden layers of width 64
# the activations (4 MB) stay in cache, which measured 3x faster than 64 MB chunks.
PAIRS_PER_CHUNK = 1 << 14

@dataclass(frozen=True)
class LayersParam(Param):
    """Hidden layer sizes written ``"64,32,16"`` (CLI ``--set layers=64,32,16``).

    `choices` are presets the UI offers; any comma-separated list of 1 to 8 sizes in
    [1, 4096] is accepted and normalised to its canonical string.
    """

    kind: str = "choice"

    def coerce(self, name: str, value):
        return format_layers(parse_layers(value, name))


def parse_layers(value, name: str = "layers") -> tuple[int, ...]:
    """``"64,32,16"``, ``"64 32 16"``, ``(64, 32, 16)`` or ``64`` -> ``(64, 32, 16)``; else `ParameterError`."""
    try:
        if isinstance(value, str):
            parts = [p for p in value.replace(" ", ",").split(",") if p]
        elif isinstance(value, (int, np.integer)):
            parts = [value]
        else:
            parts = list(value)
        sizes = tuple(int(p) for p in parts)
        if any(isinstance(p, float) and not p.is_integer() for p in parts):
            raise ValueError
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        sizes = ()
    if not 1 <= len(sizes) <= 8 or any(not 1 <= s <= 4096 for s in sizes):
        raise ParameterError(
            f"parameter {name!r} got {value!r}: give 1 to 8 comma-separated layer sizes in [1, 4096], e.g. '64,32,16'"
        )
    return sizes


def format_layers(sizes) -> str:
    return ",".join(str(s) for s in sizes)


LAYERS = LayersParam(
    choices=("16", "32,16", "64,32,16", "128,64,32", "256,128,64", "64,32,16,8"),
    help="MLP hidden sizes, comma-separated (any list of 1-8 sizes, e.g. 64,32,16)",
)
#: Training from scratch is never stopped early within its first `WARMUP_EPOCHS` epochs (see
#: `TrainSettings.warmup`): on movielens-dslabs (9,066 items) GMF's validation NDCG@10 sat at
#: popularity's level (0.017-0.022) for 10 epochs before rising to 0.037, and with patience 5
#: alone seeds 1 and 2 stopped at epochs 8 and below popularity on test (0.0165, 0.0150).
WARMUP_EPOCHS = 10


class NeuralRecommender(Recommender):
    """Base class of models whose learned state is one torch module, ``module_``.

    Subclasses set the hyperparameters used here as attributes of the same names: `epochs`,
    `batch_size`, `learning_rate`, `random_state`, `device` and, optionally, `eval_every`,
    `patience` and `weight_decay`-like terms through `train_settings`.
    """

    @abstractmethod
    def _build_module(self) -> nn.Module:
        """A freshly initialised module for ``n_users_`` x ``n_items_`` and the hyperparameters."""

    @abstractmethod
    def _train(self, train, val, callback: Callback | None) -> TrainResult:
        """Train ``self.module_`` (already built and seeded); usually `train_module(...)`."""

    def train_settings(self, **overrides) -> TrainSettings:
        """The loop settings from this model's hyperparameters (missing ones keep defaults)."""
        names = ("epochs", "batch_size", "learning_rate", "eval_every", "patience", "device", "random_state")
        values = {n: getattr(self, n) for n in names if hasattr(self, n)}
        values.update(overrides)
        # A fine-tuning run (evaluated from its pre-trained start) has no popularity plateau to wait out.
        values.setdefault("warmup", 0 if values.get("eval_start") else WARMUP_EPOCHS)
        return TrainSettings(**values)

    def _fit(self, train, val, callback):
        device = resolve_device(self.device)
        with seeded(self.random_state, device):
            self.module_ = self._build_module()
        self.pretrain_epochs_ = 0  # a staged fit (NeuMF's pre-training) sets how many it ran first
        result = self._train(train, val, callback)
        self.epochs_trained_ = result.epochs_run
        self.best_epoch_ = result.best_epoch

    @property
    def kept_epoch(self) -> int | None:
        # `best_epoch_` counts the last stage's epochs; its events count on from the pre-training's
        # (checkpoints saved before the offset was kept count from 0, as their events did not say).
        best = super().kept_epoch
        return None if best is None else vars(self).get("pretrain_epochs_", 0) + best

    def _stage(self, cls: type["NeuralRecommender"], **params) -> "NeuralRecommender":
        """A `cls` model on this fit's data with a freshly built module, for a stage that this
        model trains itself (NeuMF's pre-trained GMF and MLP, trained together by
        `engine.models.training.train_together`): set up as `fit` and `_fit` would set it up, so its
        `score` validates its module, and its module starts from the same seeded weights."""
        stage = cls(**params)
        stage.n_users_, stage.n_items_, stage.seen_ = self.n_users_, self.n_items_, self.seen_
        with seeded(stage.random_state, resolve_device(stage.device)):
            stage.module_ = stage._build_module()
        return stage

    # ---- scoring ---------------------------------------------------------------------------
    @property
    def torch_device(self) -> torch.device:
        """Where ``module_`` lives."""
        return next(self.module_.parameters()).device

    def _score(self, user_idx, item_idx):
        module, device = self.module_, self.torch_device
        module.eval()
        users = torch.from_numpy(user_idx).to(device)
        with torch.no_grad():
            if item_idx is None:
                out = self._score_rows(module, users)
            else:
                items = torch.from_numpy(item_idx).to(device)
                step = PAIRS_PER_CHUNK
                parts = [module(users[s : s + step], items[s : s + step]) for s in range(0, len(users), step)]
                out = torch.cat(parts) if parts else torch.empty(0, device=device)
        return out.float().cpu().numpy()

    def _score_rows(self, module: nn.Module, users: torch.Tensor) -> torch.Tensor:
        """Full rows, one forward pass per block of users x all items."""
        n_items, device = self.n_items_, users.device
        scorer = module if isinstance(module, RowScorer) else None
        pairs = (scorer.pairs_per_block if scorer is not None else None) or PAIRS_PER_CHUNK
        rows = max(1, pairs // max(1, n_items))
        blocks = [users[s : s + rows] for s in range(0, len(users), rows)]
        if scorer is not None:
            item_side = scorer.item_side()
            parts = [scorer.score_rows(block, item_side) for block in blocks]
        else:  # a module with only a pairwise forward
            items = torch.arange(n_items, device=device)
            parts = [module(u.repeat_interleave(n_items), items.repeat(len(u))).reshape(len(u), -1) for u in blocks]
        return torch.cat(parts) if parts else torch.empty((0, n_items), device=device)

    # ---- persistence -------------------------------------------------------------------------
    def _load_modules(self, modules):
        if set(modules) != {"module_"}:
            raise CheckpointError(f"model {self.name!r} expects one module 'module_', got {sorted(modules)}")
        try:
            device = resolve_device(self.device)
        except ParameterError:  # a checkpoint trained on a GPU opens on a machine without one
            device = torch.device("cpu")
        module = self._build_module()
        module.load_state_dict(modules["module_"])
        self.module_ = module.to(device).eval()

    @staticmethod
    def _numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()
