"""The training loop: seeded shuffling, minibatch BPTT, clipping, optimizer steps, validation,
and the lifecycle hooks.

The loop below (:func:`reference_epoch`) is the reference. A backend may take over a whole epoch
through ``Backend.epoch_runner``; such a runner must update parameters and optimizer state as
this loop does, and is tested against it. A stateful dataset (``Dataset.chunk_length > 0``) is
trained by :func:`rnnlab.training.stateful.stateful_epoch`, the reference for a runner that
declares ``"chunk_length"``, and scored by :mod:`rnnlab.training.stateful`. The session a run
trains (data, backend, parameters, optimizer, plan) is built by :mod:`rnnlab.training.session`;
its checkpoints are :mod:`rnnlab.training.checkpoints`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import RunInterrupted, TrainingDiverged
from ..experiment.schema import Experiment, TrainConfig
from ..nn.lengths import batch, bucketed_order
from ..nn.model import Model
from ..nn.optim import Optimizer, clip_gradients, learning_rate
from ..registry.progress import listening
from ..specs import Backend, Dataset, Split
from ..store.checkpoint import EpochPosition, TrainState
from .checkpoints import Checkpoints
from .diagnostics import Diagnostics
from .interrupt import StopSignal
from .session import SPLITS, EpochPlan, Session
from .stateful import mean_over_chunks, stateful_epoch, stream_loss


@dataclass
class RunInfo:
    """What lifecycle hooks see of a run. Fields are only ever added."""

    experiment: Experiment
    dataset: Dataset
    model: Model
    run_dir: Path | None = None
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    stop_reason: str | None = None
    warmup_seconds: float = 0.0  # preparing the backend's epoch runner (compiling, for some)
    runner_declined: tuple[str, ...] = ()  # plan features the backend's epoch runner lacks


def epoch_order(rng: np.random.Generator, split: Split, cfg: TrainConfig) -> np.ndarray:
    """The order in which an epoch takes the train sequences: a permutation from the shuffle
    generator, bucketed by length when ``train.bucket_by_length`` is set and the split has
    lengths (:func:`rnnlab.nn.lengths.bucketed_order`)."""
    if cfg.bucket_by_length and split.lengths is not None:
        return bucketed_order(rng, split.lengths, cfg.batch_size)
    return rng.permutation(len(split))


@dataclass(frozen=True)
class EpochControl:
    """How a run drives :func:`reference_epoch`: ``start`` skips the first batches (an epoch
    resumed from a checkpoint); ``after_batch(loss)`` is called after each optimizer step, and
    when it returns True the epoch stops there."""

    start: int = 0
    after_batch: Callable[[float], bool] | None = None


class NonFiniteError(ArithmeticError):
    """A batch's loss or gradient norm is NaN or infinite (raised before its optimizer step)."""

    def __init__(self, batch: int, what: str, value: float):
        super().__init__(f"{what} is {value} at batch {batch}")
        self.batch, self.what, self.value = batch, what, value  # batch: 1-based, in the epoch


def reference_epoch(
    model: Model,
    optimizer: Optimizer,
    plan: EpochPlan,
    split: Split,
    order: np.ndarray,
    lr: float,
    *,
    dropout_rng: np.random.Generator | None = None,
    control: EpochControl | None = None,
) -> np.ndarray:
    """One pass over ``split`` in minibatches taken in ``order``; returns the batch losses.

    ``control`` (a run's; see :class:`EpochControl`) skips the batches a checkpoint says are
    done and may stop the epoch after any batch. A NaN or
    infinite loss or gradient raises NonFiniteError before the step, leaving params untouched.
    With ``model.dropout > 0`` (and more than one layer) each batch's dropout masks are drawn
    from ``dropout_rng`` (the run's "dropout" stream), which is then required.
    """
    B = plan.train.batch_size
    control = control if control is not None else EpochControl()
    losses = []
    for b in range(control.start, num_batches(len(order), B)):
        part = batch(split, order[b * B : (b + 1) * B], plan.target)  # trimmed to its longest
        masks = batch_masks(model, dropout_rng, part.x.shape[:2])
        loss, grads, _ = model.loss_and_grads(
            part.x, part.y, plan.loss, plan.target, lengths=part.lengths, masks=masks
        )
        # clip in place; with grad_clip = "none" this only measures the global norm
        norm = clip_gradients(grads, plan.train.grad_clip, plan.train.grad_clip_value)
        if not math.isfinite(loss):
            raise NonFiniteError(b + 1, "the loss", loss)
        if not math.isfinite(norm):
            raise NonFiniteError(b + 1, "the gradient norm", norm)
        optimizer.step(model.params, grads, lr)
        losses.append(loss)
        if control.after_batch is not None and control.after_batch(loss):
            break
    return np.asarray(losses)


def batch_masks(model: Model, rng: np.random.Generator | None, shape) -> list | None:
    """The dropout masks of one training batch of ``shape = (T, N)``, or None (no dropout)."""
    if model.cfg.dropout == 0 or model.cfg.layers == 1:
        return None
    if rng is None:
        raise ValueError("model.dropout > 0 needs a generator for its masks (dropout_rng)")
    return model.dropout_masks(rng, *shape)


def num_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def epoch_loss(
    batch_losses: np.ndarray, n: int, batch_size: int, counts: np.ndarray | None = None
) -> float:
    """Mean loss per sequence over the epoch (the last batch may be smaller); with ``counts``,
    the targets each batch's loss is a mean over, the mean per target."""
    if counts is not None:
        return float(np.dot(batch_losses, counts) / counts.sum())
    sizes = np.full(len(batch_losses), batch_size, dtype=float)
    sizes[-1] = n - batch_size * (len(batch_losses) - 1)
    return float(np.dot(batch_losses, sizes) / n)


def target_counts(split: Split, order: np.ndarray, batch_size: int, target: str):
    """How many targets each batch's loss averages over, when that is not its number of
    sequences (target "every" with lengths: its valid steps); else None."""
    if target != "every" or split.lengths is None:
        return None
    steps = split.lengths[order].astype(float)
    return np.add.reduceat(steps, np.arange(0, len(order), batch_size))


def divergence_hint(cfg: TrainConfig) -> str:
    """What to change when training produced NaN or infinity."""
    hints = [f"a smaller train.learning_rate (now {cfg.learning_rate:g})"]
    if cfg.grad_clip == "none":
        hints.append('gradient clipping (train.grad_clip = "norm", train.grad_clip_value = 1.0)')
    else:
        hints.append(f"a smaller train.grad_clip_value (now {cfg.grad_clip_value:g})")
    return f"try {' or '.join(hints)}"


def train_epoch(
    session: Session,
    runner,
    position: EpochPosition,
    lr: float,
    after_batch: Callable[[float], bool] | None = None,
) -> float | None:
    """One pass over the train split by the backend's runner, the reference loop, or (stateful
    dataset) truncated BPTT over parallel streams; returns the mean training loss, or None when
    ``after_batch`` stopped the reference loop between two batches (``position`` then says
    where). Only the reference loop can resume an epoch in its middle, so it finishes any epoch
    a checkpoint left half done."""
    model, data = session.model, session.dataset
    train, B = data.splits["train"], session.experiment.train.batch_size
    if data.chunk_length:
        return stateful_train_epoch(session, runner, lr)
    if runner is not None and position.batches_done == 0:
        extra = runner_keywords(session)
        if train.lengths is not None:
            extra["lengths"] = train.lengths
        losses = runner(
            model.params, session.optimizer, train.x, train.y, position.order, lr, **extra
        )
        position.losses = [float(v) for v in losses]
        check_finite(position.losses, model.params)
    else:
        reference_epoch(
            model,
            session.optimizer,
            session.plan,
            train,
            position.order,
            lr,
            dropout_rng=session.rngs["dropout"],
            control=EpochControl(position.batches_done, after_batch),
        )
        if position.batches_done < num_batches(len(train), B):
            return None
    counts = target_counts(train, position.order, B, data.target)
    return epoch_loss(np.asarray(position.losses), len(train), B, counts)


def runner_keywords(session: Session) -> dict:
    """The keywords an epoch runner gets beyond the data: ``dropout_rng`` (the run's "dropout"
    stream) for a plan with dropout, from which it draws each batch's masks with
    :func:`rnnlab.nn.model.dropout_masks`, exactly as the core loop does."""
    return {"dropout_rng": session.rngs["dropout"]} if session.model.cfg.dropout else {}


def stateful_train_epoch(session: Session, runner, lr: float) -> float:
    """One pass of truncated BPTT over the train streams, by the backend's runner (called with
    ``order=None`` and ``chunk_length``) or by :func:`rnnlab.training.stateful.stateful_epoch`;
    returns
    the mean loss per target."""
    model, data = session.model, session.dataset
    train, k = data.splits["train"], data.chunk_length
    if runner is None:
        losses = stateful_epoch(
            model, session.optimizer, session.plan, train, k, lr, session.rngs["dropout"]
        )
    else:
        keywords = runner_keywords(session)
        losses = runner(
            model.params, session.optimizer, train.x, train.y, None, lr, chunk_length=k, **keywords
        )
    check_finite([float(v) for v in losses], model.params)
    return mean_over_chunks(losses, train.x.shape[0], k)


def split_loss(model: Model, data: Dataset, name: str) -> float:
    """The training loss on one split (state carried through a stateful dataset's stream)."""
    split = data.splits[name]
    if data.chunk_length:
        return stream_loss(model, split, data.loss, data.chunk_length)
    return model.loss(split.x, split.y, data.loss, data.target, lengths=split.lengths)


def warm_up(session: Session, info: RunInfo, on_status=None):
    """Let the backend get ready (it may compile kernels) and ask it for its epoch runner, timed
    together as its warm-up; ``on_status(message)`` hears about it."""
    name = session.experiment.train.backend
    # only a backend with a warm-up of its own (numba's compiles) has anything to prepare
    prepares = getattr(type(session.backend), "warm_up", Backend.warm_up) is not Backend.warm_up
    if on_status is not None and prepares:
        on_status(f"preparing backend {name!r} (may compile kernels on first use) ...")
    t0 = time.perf_counter()
    backend = session.backend  # warm_up and epoch_runner are optional (Backend has defaults)
    with listening(on_status, f"backend {name!r}"):  # what it compiles, said as it goes
        if hasattr(backend, "warm_up"):
            backend.warm_up(session.plan)
        runner = epoch_runner(backend, session.plan, info, on_status)
    info.warmup_seconds = time.perf_counter() - t0
    if on_status is not None and prepares:
        on_status(f"backend {name!r} ready in {info.warmup_seconds:.2f} s")
    return runner


def epoch_runner(backend: Backend, plan: EpochPlan, info: RunInfo | None = None, on_status=None):
    """The backend's epoch runner for ``plan`` when it declares (``Backend.epoch_features``)
    every feature the plan uses, else None: the reference loop runs, and ``on_status`` hears
    once which features were missing (kept in ``info.runner_declined``)."""
    declared = getattr(backend, "epoch_features", frozenset())
    name = getattr(backend, "name", "?")
    offered = getattr(type(backend), "epoch_runner", Backend.epoch_runner)
    if not declared:
        if offered is not Backend.epoch_runner and on_status is not None:
            on_status(
                f"backend {name!r}: the core loop runs the epochs, as its epoch runner "
                f"declares no epoch_features"
            )
        return None  # no fast path offered
    missing = plan.uncovered(declared)
    if missing:
        if info is not None:
            info.runner_declined = tuple(sorted(missing))
        if on_status is not None:
            on_status(
                f"backend {name!r}: the core loop runs the epochs, as its epoch runner "
                f"does not implement {', '.join(sorted(missing))}"
            )
        return None
    return backend.epoch_runner(plan)


def fit(
    session: Session,
    registry,
    info: RunInfo,
    on_epoch=None,
    *,
    state: TrainState | None = None,
    save: Callable[[TrainState], None] | None = None,
    stop: StopSignal | None = None,
    on_status=None,
) -> list[dict]:
    """Train until ``train.epochs`` epochs are done (or a hook asks to stop); return the history.

    ``state`` continues a checkpointed run whose parameters, optimizer and generators the caller
    has restored. ``save(state)`` writes a checkpoint; it is called as ``train.checkpoint_every``
    and ``train.checkpoint_seconds`` ask, after the last epoch, and when ``stop`` is raised (seen
    after every batch of the core loop, after every epoch of a backend's epoch runner), after
    which RunInterrupted is raised. A NaN or infinite loss or gradient raises TrainingDiverged
    without saving, so the last checkpoint is the last good one. With ``keep_best`` the model
    ends with the parameters of its best validation epoch. ``on_status(message)`` hears about
    the backend's warm-up.

    Training ends in one of three ways besides running out of epochs: ``stop`` (Ctrl-C,
    SIGTERM) between two batches or after an epoch raises RunInterrupted, with a checkpoint; a
    plugin's ``on_epoch_end`` returning True ends it early (``info.stop_reason``); NaN or
    infinity raises TrainingDiverged (in :func:`run_epoch`).
    """
    exp = session.experiment
    runner = warm_up(session, info, on_status)
    state = state if state is not None else TrainState()
    checkpoints = Checkpoints(exp.train, state, save)
    diagnostics = Diagnostics(exp.diagnostics, session.model, session.dataset, exp.experiment.seed)
    info.epoch, info.history = state.epoch, state.history
    registry.call("on_run_start", run=info)
    while state.epoch < exp.train.epochs:
        epoch = state.epoch + 1  # 1-based number of the epoch being run
        record = run_epoch(session, runner, state, epoch, checkpoints, stop)
        record.update(diagnostics.after_epoch(epoch))  # [diagnostics]: health, gradient flow
        state.epoch, state.position = epoch, None
        info.epoch = epoch
        state.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if any(registry.call("on_epoch_end", run=info, epoch=epoch, metrics=record)):
            info.stop_reason = info.stop_reason or "stopped by a plugin"  # a plugin may say why
            break
        if stop is not None and stop.requested:  # after the hooks saw the epoch: their state
            checkpoints.write()  # in the checkpoint includes it
            raise RunInterrupted(stop.signum, f"{stop.name} after epoch {epoch}")
        checkpoints.after_epoch(epoch)
    checkpoints.at_end()
    if exp.train.keep_best and state.best_params is not None:
        for k, v in state.best_params.items():
            session.model.params[k][...] = v
    return info.history


def batch_done(
    position: EpochPosition, checkpoints: Checkpoints, stop: StopSignal | None, loss: float
) -> bool:
    """After each batch of the core loop: note its loss; True (stop the epoch here) when a stop
    was asked for, else write a checkpoint if one is due."""
    position.losses.append(loss)
    if stop is not None and stop.requested:
        return True
    checkpoints.after_batch()
    return False


def run_epoch(
    session: Session,
    runner,
    state: TrainState,
    epoch: int,
    checkpoints: Checkpoints,
    stop: StopSignal | None,
) -> dict:
    """Train epoch ``epoch`` (continuing ``state.position`` when a checkpoint left it half done),
    score the validation split and keep the best parameters; return the epoch's record.

    Raises RunInterrupted, after a checkpoint, when ``stop`` is seen between two batches, and
    TrainingDiverged when a loss, gradient or the validation loss is NaN or infinite."""
    exp, model, data = session.experiment, session.model, session.dataset
    train = data.splits["train"]
    n_batches = num_batches(len(train), exp.train.batch_size)
    lr = learning_rate(exp.train, epoch - 1)
    if state.position is None:
        state.position = EpochPosition(epoch_order(session.rngs["shuffle"], train, exp.train), [])
    position = state.position
    t0 = time.perf_counter()
    try:
        loss = train_epoch(
            session, runner, position, lr, partial(batch_done, position, checkpoints, stop)
        )
    except NonFiniteError as exc:
        raise TrainingDiverged(
            f"training diverged: {exc.what} is {exc.value} at epoch "
            f"{epoch}, batch {exc.batch} of {n_batches}; "
            f"{divergence_hint(exp.train)}"
        ) from None
    seconds = time.perf_counter() - t0
    if loss is None:  # stopped between two batches
        checkpoints.write()
        raise RunInterrupted(
            stop.signum,
            f"{stop.name} at epoch {epoch}, after batch {position.batches_done} of {n_batches}",
        )
    val_loss = split_loss(model, data, "val")
    if not math.isfinite(val_loss):
        raise TrainingDiverged(
            f"training diverged: the validation loss is {val_loss} after "
            f"epoch {epoch}; {divergence_hint(exp.train)}"
        )
    record = {"epoch": epoch, "loss": loss, "val_loss": val_loss, "lr": lr, "seconds": seconds}
    if val_loss < state.best_loss:
        state.best_loss, state.best_epoch = val_loss, epoch
        state.best_params = {k: v.copy() for k, v in model.params.items()}
    record["best_epoch"] = state.best_epoch
    return record


def check_finite(batch_losses: list[float], params: dict[str, np.ndarray]) -> None:
    """After an epoch the core loop did not run step by step (a backend's epoch runner, a
    stateful epoch): every batch loss and parameter must be finite."""
    for b, loss in enumerate(batch_losses):
        if not math.isfinite(loss):
            raise NonFiniteError(b + 1, "the loss", loss)
    for name, p in params.items():
        if not np.all(np.isfinite(p)):
            raise NonFiniteError(
                len(batch_losses),
                f"a value of {name} (after the epoch)",
                float(p[~np.isfinite(p)].flat[0]),
            )


def evaluate(session: Session) -> dict[str, dict[str, float]]:
    """The task's metrics on every split, with the loss the model was trained on."""
    model, data = session.model, session.dataset
    out = {}
    for name in SPLITS:
        metrics = {"loss": split_loss(model, data, name)}
        metrics.update(session.task.metrics(model, data, name))
        out[name] = {k: float(v) for k, v in metrics.items()}
    return out
