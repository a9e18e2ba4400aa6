"""The one epoch loop of every iterative model, and the training loop of the neural ones.

`run_epochs` is the epoch loop: a model hands it a `Trainee` (its epoch step, and how to
publish, copy and restore its learned state) and the loop owns the rest - the range of epochs,
validation, the one early-stopping rule, restoring the best state and the progress events. The
closed-form and hand-written models (ALS, MF-ALS, SVD, BPR and WARP through `SampledMF`) call it
directly; every torch-module model goes through `train_module` / `train_together`, which build
the step from a module, an optimizer and the mini-batches described below.

A neural model builds its ``nn.Module`` and hands it to `train_module` with two small functions: one
that builds an epoch's examples as aligned tensors (`pointwise_examples`, `pairwise_examples` or
its own), and one that turns a mini-batch of them into a scalar loss (usually with `bce_loss` or
`bpr_loss`). The loop owns everything else, so every neural model gets the same behaviour:

- examples built for a whole epoch at once with vectorized tensor ops (negatives sampled for
  every positive in one call, one permutation, contiguous mini-batch slices);
- Adam (or plain SGD) with L2 as weight decay, and optionally an exponential moving average of
  the weights that validation, the kept snapshot and the fitted model use (`TrainSettings`);
- early stopping on validation NDCG@10 every `eval_every` epochs, with the best weights
  restored at the end; validation ranks a fixed sample of at most `VALIDATION_USERS` users
  (`validation_sample`), so its cost per epoch stays bounded however many users there are;
- one progress event per epoch, ``{"epoch", "epochs", "loss", "seconds", "epoch_seconds"}``
  plus ``"val_ndcg@10"`` and ``"val_seconds"`` where it validated (``seconds`` counts from the
  start of training, ``epoch_seconds`` is this epoch with its validation, ``val_seconds`` the
  validation alone: where the time goes); a callback that raises
  `engine.models.base.Cancelled` stops the fit (the exception propagates and the model's base
  class leaves it unfitted);
- fixed seeds: the same `random_state` gives bit-identical weights on the CPU;
- the device chosen by `resolve_device` (``cuda`` when available unless the model says).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data.sampling import NegativeSampler
from engine.data.split import Split
from engine.device import resolve_device
from engine.errors import EngineError, ParameterError
from engine.evaluation import evaluate
from engine.models.base import Callback, Recommender

OPTIMIZERS = ("adam", "sgd")
#: Validation during training ranks at most this many users: a fixed sample (`validation_sample`,
#: seeded with `VALIDATION_SEED`), the same users every epoch, every stage of a pre-trained fit
#: and every model fitted on the split. Each validated user costs one score per item, so on a
#: large user base validation would otherwise grow to dominate an epoch. With 2,000 users the
#: standard error of validation NDCG@10 is at most 0.0061 where it is near 0.08 (a per-user value
#: in [0, 1] with mean m has variance at most m(1 - m)). Smaller user bases (ML-100k's 943) are
#: validated whole; the final test evaluation always ranks every user.
VALIDATION_USERS = 2000
VALIDATION_SEED = 0


class EpochRandom(NamedTuple):
    """The random sources an example builder may use: both derive from the fit's seed."""

    torch: torch.Generator  # on the training device
    numpy: np.random.Generator


#: ``examples(rng) -> (tensor, ...)``: one epoch of aligned examples (first dimension).
ExampleBuilder = Callable[[EpochRandom], Sequence[torch.Tensor]]
#: ``batch_loss(module, *batch) -> scalar tensor``: the mean loss of one mini-batch.
BatchLoss = Callable[..., torch.Tensor]
#: ``evaluator(model, val) -> metrics dict`` with an ``"ndcg@10"`` entry.
Evaluator = Callable[[Recommender, Split], dict]


@dataclass(frozen=True)
class TrainSettings:
    """How to run the loop; models fill it from their hyperparameters.

    Parameters
    ----------
    epochs : maximum passes over the examples.
    batch_size : examples per optimizer step.
    learning_rate : step size of the optimizer.
    weight_decay : L2 penalty added to the gradient of every parameter (coupled L2, as
        ``torch.optim.Adam(weight_decay=...)``).
    optimizer : "adam" or "sgd" (plain SGD, as NeuMF's fine-tuning after pre-training).
    eval_every : evaluate validation NDCG@10 every this many epochs (and after the last one).
    patience : stop after this many evaluations in a row without improvement; 0 never stops
        early (the best weights are still restored).
    device : "auto", "cpu" or "cuda".
    random_state : seed of every random draw of the fit.
    eval_start : also evaluate the module before the first epoch, as epoch 0: a fine-tuning
        run (e.g. NeuMF from pre-trained GMF and MLP) then never ends worse on validation than
        its starting point.
    warmup : evaluations up to this epoch never count towards `patience` (the best weights are
        still tracked from the first one). A model trained from scratch first learns
        popularity, and on a large catalogue validation can sit on that plateau for several
        evaluations before the personal signal lifts it.
    validation_users : validate on a fixed sample of at most this many users
        (`validation_sample`); 0 validates every user.
    weight_average : the decay of an exponential moving average of a module's weights,
        updated after every optimizer step (``avg += r_t * (w - avg)`` with
        ``r_t = (1 - decay) / (1 - decay^t)``, so step ``t`` weighs ``decay^age`` and the
        starting weights nothing: `WeightAverage`); when set (0 < decay < 1), validation
        scores the averaged weights and they are what is kept, while training goes on from the
        raw ones. The average over the last ~1 / (1 - decay)
        steps is smoother than any one step's weights: SASRec's validation curve jumped by
        0.01 between checks without it. 0 (the default) uses the weights as trained.
    keep_best : restore the state of the best validated epoch at the end (the neural models,
        BPR, WARP); False keeps the last epoch's state, and validation then neither selects nor
        stops anything (with `patience` 0): it is a diagnostic for a listener, run only for a
        trainee with a callback (ALS, MF-ALS, SVD, whose fits never depend on a callback).

    `run_epochs` reads only `epochs`, `eval_every`, `patience`, `warmup`, `eval_start`,
    `validation_users` and `keep_best`; the others are `train_module`'s.
    """

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    eval_every: int = 1
    patience: int = 3
    device: str = "auto"
    random_state: int = 0
    eval_start: bool = False
    warmup: int = 0
    validation_users: int = VALIDATION_USERS
    weight_average: float = 0.0
    keep_best: bool = True

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(f"unknown optimizer {self.optimizer!r} (valid: {', '.join(OPTIMIZERS)})")
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("patience", "warmup", "validation_users"):
            if getattr(self, name) < 0:
                raise ParameterError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.weight_average < 1.0:
            raise ParameterError(f"weight_average must be in [0, 1), got {self.weight_average}")


@dataclass
class TrainResult:
    """What happened: epochs run, the epoch whose weights were kept, and every event."""

    epochs_run: int = 0
    best_epoch: int | None = None
    best_ndcg: float | None = None
    history: list[dict] = field(default_factory=list)


# ---- losses --------------------------------------------------------------------------------
def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pointwise log loss of NCF: mean of ``-y log sigmoid(x) - (1 - y) log(1 - sigmoid(x))``.

    References
    ----------
    .. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017, eq. 7.
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def bpr_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Pairwise BPR loss: mean of ``-log sigmoid(x_ui - x_uj)`` (`negative` may be (B, n)).

    References
    ----------
    .. [1] Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking
       from Implicit Feedback", UAI 2009.
    """
    if negative.dim() == positive.dim() + 1:
        positive = positive.unsqueeze(-1)
    # softplus(-d) == -log sigmoid(d), without the underflow of log(sigmoid(d)).
    return F.softplus(negative - positive).mean()


# ---- example builders ------------------------------------------------------------------------
def positives(train: Split) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) training pairs, user-major (duplicates of a pair count once)."""
    csr = train.matrix(binary=True)
    users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return users, csr.indices.astype(np.int64)


def pointwise_examples(train: Split, negatives: int) -> ExampleBuilder:
    """NCF's pointwise examples: every positive (label 1) plus `negatives` fresh unseen items
    per positive (label 0), resampled each epoch. Returns ``(users, items, labels)``."""
    sampler = NegativeSampler(train.matrix(binary=True))
    users_np, items_np = positives(train)

    def build(rng: EpochRandom):
        device = rng.torch.device
        users = torch.from_numpy(users_np).to(device)
        neg = sampler.sample(users, negatives, rng.torch)  # (P, negatives)
        keep = neg.reshape(-1) >= 0  # users who saw every item have no negative
        all_users = torch.cat([users, users.repeat_interleave(negatives)[keep]])
        all_items = torch.cat([torch.from_numpy(items_np).to(device), neg.reshape(-1)[keep]])
        labels = torch.zeros(len(all_users), device=device)
        labels[: len(users)] = 1.0
        return all_users, all_items, labels

    return build


def pairwise_examples(train: Split, negatives: int = 1) -> ExampleBuilder:
    """BPR triples: every positive with `negatives` unseen items, resampled each epoch.

    Returns ``(users, positive_items, negative_items)`` with negative_items of shape (P, n).
    """
    sampler = NegativeSampler(train.matrix(binary=True))
    users_np, items_np = positives(train)
    full = sampler.degree[users_np] >= sampler.n_items
    users_np, items_np = users_np[~full], items_np[~full]

    def build(rng: EpochRandom):
        device = rng.torch.device
        users = torch.from_numpy(users_np).to(device)
        return users, torch.from_numpy(items_np).to(device), sampler.sample(users, negatives, rng.torch)

    return build


# ---- validation ----------------------------------------------------------------------------
def validation_sample(val: Split, max_users: int = VALIDATION_USERS, seed: int = VALIDATION_SEED) -> Split:
    """`val` restricted to a fixed random sample of `max_users` of its users (all of them when
    there are no more than that, or when `max_users` is 0). The sample depends only on the
    split and `seed`, so every epoch and every model fitted on the split validates the same users."""
    users = val.users()
    if not max_users or len(users) <= max_users:
        return val
    chosen = np.random.default_rng(seed).choice(users, size=max_users, replace=False)
    return val.subset(np.isin(val.user_idx, chosen))


# ---- seeds ---------------------------------------------------------------------------------
@contextlib.contextmanager
def seeded(random_state: int, device: torch.device | str = "cpu"):
    """Run a block (module construction, dropout) under torch's global RNG seeded with
    `random_state`, restoring the caller's RNG state afterwards."""
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(random_state)
        yield


# ---- the epoch loop ---------------------------------------------------------------------------
@dataclass
class Trainee:
    """What a model gives `run_epochs`: its epoch step and how to reach its learned state.

    step : ``step(epoch) -> mean loss`` (or None where computing it costs a pass the model
        only makes for a listener): one pass over the training data.
    model : the recommender whose `score` validation calls (``evaluator(model, val)``); None
        without validation.
    callback : gets one progress event per epoch; may raise `engine.models.base.Cancelled`.
    publish : makes `model` score with the current state (copy factors out of the training
        tensors, put a module in eval mode); called before each validation and callback and
        when the loop ends, also on failure.
    snapshot : a copy of the current state, taken at each new best validation.
    restore : makes a snapshot the model's (published) state, at the end, when
        `TrainSettings.keep_best`.
    """

    step: Callable[[int], float | None]
    model: Recommender | None = None
    callback: Callback | None = None
    publish: Callable[[], None] = lambda: None
    snapshot: Callable[[], object] | None = None
    restore: Callable[[object], None] | None = None


def run_epochs(
    trainees: Sequence[Trainee],
    settings: TrainSettings,
    *,
    val: Split | None = None,
    evaluator: Evaluator | None = None,
    before_epoch: Callable[[int], None] | None = None,
) -> list[TrainResult]:
    """Run the epochs of one or more trainees; return one `TrainResult` per trainee, in order.

    Each epoch calls `before_epoch` once (work the trainees share, e.g. drawing the epoch's
    negatives) and then the step of every trainee that has not stopped. Validation NDCG@10 on
    `validation_sample` of `val` runs every `eval_every` epochs and after the last one (and
    before the first with `eval_start`); a new best keeps a snapshot, and a trainee stops
    after `patience` evaluations in a row without one (those up to epoch `warmup` do not
    count). At the end each trainee gets its best snapshot back (`keep_best`).

    Progress events: ``{"epoch", "epochs", "loss", "seconds", "epoch_seconds"}`` plus
    ``"val_ndcg@10"`` and ``"val_seconds"`` where it validated (``seconds`` since the start,
    ``epoch_seconds`` this epoch's shared work, step and validation, ``val_seconds`` the
    validation alone).

    Raises
    ------
    Cancelled : re-raised from a callback.
    EngineError : when a step's loss is NaN or infinite (the learning rate is too high).
    """
    if val is not None and len(val) == 0:
        val = None
    if val is not None:
        evaluator = evaluator or evaluate
        val = validation_sample(val, settings.validation_users)
    diagnostic = not settings.keep_best and not settings.patience
    runs = [_Run(t) for t in trainees]
    for run in runs:
        # Validation that neither selects nor stops is only worth its cost to a listener.
        run.validates = val is not None and not (diagnostic and run.trainee.callback is None)

    start = time.perf_counter()
    try:
        if settings.eval_start:
            for run in runs:
                if run.validates:
                    run.judge(0, run.validate(evaluator, val), settings)
        for epoch in range(1, settings.epochs + 1):
            running = [run for run in runs if not run.stopped]
            if not running:
                break
            epoch_start = time.perf_counter()
            if before_epoch is not None:
                before_epoch(epoch)
            shared_seconds = time.perf_counter() - epoch_start
            for run in running:
                run_start = time.perf_counter()
                loss = run.trainee.step(epoch)
                if loss is not None and not math.isfinite(loss):
                    raise EngineError("training diverged (the loss is not finite): lower learning_rate")
                event = {"epoch": epoch, "epochs": settings.epochs, "loss": loss, "seconds": 0.0, "epoch_seconds": 0.0}
                if run.validates and (epoch % settings.eval_every == 0 or epoch == settings.epochs):
                    val_start = time.perf_counter()
                    ndcg = run.validate(evaluator, val)
                    event["val_ndcg@10"] = ndcg
                    event["val_seconds"] = time.perf_counter() - val_start
                    run.judge(epoch, ndcg, settings)
                now = time.perf_counter()
                event["seconds"], event["epoch_seconds"] = now - start, shared_seconds + now - run_start
                run.result.epochs_run = epoch
                run.result.history.append(event)
                if run.trainee.callback is not None:
                    run.trainee.publish()  # a listener may score the model between epochs
                    run.trainee.callback(dict(event))
                run.stopped = bool(settings.patience) and run.stale >= settings.patience
    finally:
        for run in runs:
            run.trainee.publish()
    for run in runs:
        if settings.keep_best and run.best_state is not None:
            run.trainee.restore(run.best_state)
    return [run.result for run in runs]


class _Run:
    """One trainee's early-stopping state in `run_epochs`."""

    def __init__(self, trainee: Trainee):
        self.trainee = trainee
        self.result = TrainResult()
        self.best_state: object | None = None
        self.stale = 0
        self.stopped = False
        self.validates = False

    def validate(self, evaluator: Evaluator, val: Split) -> float:
        self.trainee.publish()
        return float(evaluator(self.trainee.model, val)["ndcg@10"])

    def judge(self, epoch: int, ndcg: float, settings: TrainSettings) -> None:
        """Keep a snapshot if `ndcg` is the best so far, else count a stale evaluation."""
        if self.result.best_ndcg is None or ndcg > self.result.best_ndcg:
            self.result.best_ndcg, self.result.best_epoch, self.stale = ndcg, epoch, 0
            if settings.keep_best and self.trainee.snapshot is not None:
                self.best_state = self.trainee.snapshot()
        elif epoch > settings.warmup:
            self.stale += 1


# ---- the neural models' step: mini-batches of a torch module --------------------------------------
@dataclass
class Member:
    """One module of `train_together`: the recommender whose `score` uses it (for validation;
    None without validation), the module, its mini-batch loss and its progress callback."""

    model: Recommender | None
    module: nn.Module
    batch_loss: BatchLoss
    callback: Callback | None = None


def train_module(
    model: Recommender,
    module: nn.Module,
    examples: ExampleBuilder,
    batch_loss: BatchLoss,
    settings: TrainSettings,
    *,
    val: Split | None = None,
    callback: Callback | None = None,
    evaluator: Evaluator | None = None,
) -> TrainResult:
    """Train `module` (an attribute of `model`) in place; return what happened.

    Parameters
    ----------
    model : the recommender that owns `module`; validation calls ``evaluator(model, val)``, so
        its `score` must already use `module` (and `model.seen_` must be set, as
        `Recommender.fit` does before `_fit`).
    module : moved to the settings' device and left there, in eval mode.
    examples : builds one epoch of aligned example tensors from the epoch's random sources.
    batch_loss : ``batch_loss(module, *batch)`` -> scalar loss of one mini-batch.
    settings : epochs, batch size, optimizer, early stopping, device and seed.
    val : validation split; when given, NDCG@10 on it (on `validation_sample` of its users)
        drives early stopping and the weights of the best evaluated epoch are restored at the end.
    callback : called once per epoch with the progress event; may raise `Cancelled`.
    evaluator : replaces ``engine.evaluation.evaluate`` (tests stub it).

    Raises
    ------
    Cancelled : re-raised from the callback.
    EngineError : when the loss becomes NaN or infinite (the learning rate is too high).
    """
    member = Member(model, module, batch_loss, callback)
    return train_together([member], examples, settings, val=val, evaluator=evaluator)[0]


def train_together(
    members: Sequence[Member],
    examples: ExampleBuilder,
    settings: TrainSettings,
    *,
    val: Split | None = None,
    evaluator: Evaluator | None = None,
) -> list[TrainResult]:
    """Train several modules on one stream of examples, each as `train_module` would alone.

    Each epoch's examples are built (negatives drawn) and shuffled once, and every member still
    training makes its own pass over them with its own optimizer, validation, early stopping,
    best weights and progress events. The random stream of an epoch does not depend on the
    modules, so each member ends with exactly the weights it would get from `train_module` with
    the same settings (unless its loss draws from torch's global generator, e.g. dropout, which
    the members then share); what is saved is one example build and shuffle per epoch for each
    member after the first: NeuMF's pre-trained GMF and MLP share their negatives this way.
    Returns one `TrainResult` per member, in order.
    """
    device = resolve_device(settings.device)
    rng = EpochRandom(torch.Generator(device=device), np.random.default_rng(settings.random_state))
    rng.torch.manual_seed(settings.random_state)
    epoch_examples: list[torch.Tensor] = []

    def shuffle_examples(epoch: int) -> None:
        epoch_examples[:] = _shuffled(examples(rng), rng.torch)

    trainees = [_module_trainee(member, settings, device, epoch_examples) for member in members]
    with seeded(settings.random_state, device):
        return run_epochs(trainees, settings, val=val, evaluator=evaluator, before_epoch=shuffle_examples)


def _module_trainee(member: Member, settings: TrainSettings, device: torch.device, examples: list) -> Trainee:
    """A member as a `Trainee`: mini-batch steps of its own optimizer over the epoch's examples."""
    module = member.module.to(device)
    params = [p for p in module.parameters() if p.requires_grad]
    optim_cls = torch.optim.Adam if settings.optimizer == "adam" else torch.optim.SGD
    # fused: one kernel for all parameters instead of a Python loop of small ops per step.
    optimizer = optim_cls(params, lr=settings.learning_rate, weight_decay=settings.weight_decay, fused=True)
    average = WeightAverage(module, settings.weight_average) if settings.weight_average else None

    def step(epoch: int) -> float:
        if average is not None:
            average.swap_out()  # training goes on from its own weights, not the average
        update = None if average is None else average.update
        return _run_epoch(module, optimizer, examples, member.batch_loss, settings.batch_size, update)

    if average is None:
        return Trainee(step, member.model, member.callback, publish=module.eval,
                       snapshot=lambda: _state_copy(module.state_dict()), restore=module.load_state_dict)
    # Between epochs the module scores with the average (validation, snapshots, the end).
    return Trainee(step, member.model, member.callback, publish=average.swap_in, snapshot=average.copy,
                   restore=average.restore)


class WeightAverage:
    """An exponential moving average of a module's weights, and the swap that lets the module
    score with it between epochs while training goes on from its own weights.

    `update` after every optimizer step; `swap_in` puts the average into the module (the
    trained weights set aside) and eval mode; `swap_out` puts the trained weights back, before
    the next epoch. Integer buffers, if any, are copied, not averaged.
    """

    def __init__(self, module: nn.Module, decay: float):
        self.module, self.decay, self.steps = module, decay, 0
        live = module.state_dict()
        self.average = _state_copy(live)
        self.trained: dict[str, torch.Tensor] | None = None  # set aside while the average is in
        # (average, live) pairs, found once: the state dict's tensors share the parameters'
        # storage, which the optimizer and `load_state_dict` write in place, so every step
        # reads the current weights without rebuilding the state dict.
        pairs = [(self.average[name], value) for name, value in live.items()]
        self._floats = [pair for pair in pairs if pair[1].is_floating_point()]
        self._others = [pair for pair in pairs if not pair[1].is_floating_point()]

    def update(self) -> None:
        # Bias-corrected: the average of the steps so far, weighted (1 - decay) * decay^age and
        # normalised, so the starting weights never count (as Adam corrects its moments); a
        # short fit is not held back towards its random start.
        self.steps += 1
        rate = (1.0 - self.decay) / (1.0 - self.decay**self.steps)
        with torch.no_grad():
            for average, value in self._floats:
                average.lerp_(value, rate)
            for average, value in self._others:
                average.copy_(value)

    def swap_in(self) -> None:
        if self.trained is None:
            self.trained = _state_copy(self.module.state_dict())
            self.module.load_state_dict(self.average)
        self.module.eval()

    def swap_out(self) -> None:
        if self.trained is not None:
            self.module.load_state_dict(self.trained)
            self.trained = None

    def copy(self) -> dict[str, torch.Tensor]:
        return _state_copy(self.average)

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        """The end of training: `state` (an averaged snapshot) is the module's for good."""
        self.module.load_state_dict(state)
        self.trained = None


def _state_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in state.items()}


def _shuffled(tensors: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """The epoch's examples in one random order: one gather, then contiguous slices per batch."""
    order = torch.randperm(len(tensors[0]), generator=generator, device=generator.device)
    return [t[order] for t in tensors]


def _run_epoch(module, optimizer, tensors, batch_loss, batch_size, after_step=None) -> float:
    """One pass over the (shuffled) examples; returns the mean loss. `after_step()` runs after
    every optimizer step (the weight average's update)."""
    module.train()
    n = len(tensors[0])
    total = torch.zeros((), device=tensors[0].device)
    for s in range(0, n, batch_size):
        batch = [t[s : s + batch_size] for t in tensors]
        loss = batch_loss(module, *batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        total += loss.detach() * len(batch[0])
    return float(total) / max(1, n)
