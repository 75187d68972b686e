"""The training loop: seeded shuffling, minibatch BPTT, clipping, optimizer steps, validation,
and the lifecycle hooks.

The loop below (:func:`reference_epoch`) is the reference. A backend may take over a whole epoch
through ``Backend.epoch_runner``; such a runner must update parameters and optimizer state as
this loop does, and is tested against it. A stateful dataset (``Dataset.chunk_length > 0``) is
trained and scored by :mod:`rnnlab.streams` instead, never by a backend's runner.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointSchedule, EpochPosition, TrainState
from .config import Experiment, ModelConfig, TrainConfig
from .errors import ConfigError, PluginError, RunInterrupted, TrainingDiverged
from .interrupt import StopSignal
from .lengths import (
    batch,
    bucketed_order,
    check_backend_supports,
    check_lengths,
    has_lengths,
    inert_padding,
)
from .model import GATES, Model, Shape, init_params
from .optim import Optimizer, clip_gradients, learning_rate
from .specs import Backend, Dataset, Split, Task, TaskContext
from .streams import check_stream_dataset, parallel_streams, stateful_epoch, stream_loss

SPLITS = ("train", "val", "test")
STREAMS = ("data", "init", "shuffle", "demo")  # one independent generator per use


@dataclass(frozen=True)
class EpochPlan:
    """What a backend's epoch runner must reproduce: model, training settings, loss and target.

    Runners only ever see independent sequences: for a stateful dataset (``chunk_length > 0``)
    the core asks no runner and walks the streams itself (:mod:`rnnlab.streams`).
    """

    model: ModelConfig
    train: TrainConfig
    loss: str
    target: str


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


@dataclass
class Session:
    """Everything a run needs, built from an experiment before any training."""

    experiment: Experiment
    task: Task
    dataset: Dataset
    backend: Backend
    model: Model
    optimizer: Optimizer
    rngs: dict[str, np.random.Generator]
    plan: EpochPlan


def generators(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for data, initialisation, shuffling and demos, from one seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, children, strict=True)}


def load_backend(exp: Experiment, registry) -> Backend:
    """The backend the experiment names, checked for availability, cell and dtype."""
    spec = registry.backend(exp.train.backend)
    reason = spec.unavailable()
    if reason:
        raise ConfigError(f"backend {spec.name!r} is unavailable here: {reason}",
                          source=str(exp.source or ""), table="train", key="backend")
    try:
        backend = spec.load()
    except ImportError as exc:
        raise ConfigError(f"backend {spec.name!r} cannot be loaded: {exc}",
                          source=str(exp.source or ""), table="train", key="backend") from None
    for key, value, supported in (("cell", exp.model.cell, backend.cells),
                                  ("dtype", exp.model.dtype, backend.dtypes)):
        if value not in supported:
            raise ConfigError(f"backend {spec.name!r} does not support {key} {value!r} "
                              f"(supported: {', '.join(supported)})",
                              source=str(exp.source or ""), table="model", key=key)
    return backend


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(exp: Experiment, shape: Shape) -> None:
    """Refuse a model whose parameters, gradients and optimizer state (about four copies, plus
    the best-epoch copy) exceed this machine's memory: a clear message instead of a crash."""
    m = exp.model
    G, H = GATES[m.cell], m.hidden_size
    count = (G * H * (shape.input_size + H + 2)  # first layer: W_ih, W_hh, b_ih, b_hh
             + (m.layers - 1) * G * H * (2 * H + 2)  # the layers above it
             + shape.output_size * (H + 1))  # head
    need, have = 5 * count * np.dtype(m.dtype).itemsize, physical_memory()
    if have is not None and need > have:
        raise ConfigError(f"{count:,} parameters need about {need / 2**30:,.0f} GiB with their "
                          f"gradients and optimizer state; this machine has "
                          f"{have / 2**30:,.0f} GiB (reduce model.hidden_size or model.layers)",
                          source=str(exp.source or ""), table="model")


def cast(split: Split, dtype: np.dtype) -> Split:
    y = split.y.astype(dtype) if np.issubdtype(split.y.dtype, np.floating) else split.y
    return Split(np.ascontiguousarray(split.x, dtype=dtype), y, split.lengths)


def prepare(exp: Experiment, registry) -> Session:
    """Build the task's data, the backend, the parameters and the optimizer for one run."""
    rngs = generators(exp.experiment.seed)
    task = registry.task(exp.task.name).factory(dict(exp.task.options), TaskContext(exp.base_dir))
    try:
        dataset = task.build(rngs["data"])
    except ConfigError as exc:  # a task's own check of its options: name the file
        raise exc.located(str(exp.source or "")) from None
    except (ArithmeticError, IndexError, ValueError) as exc:  # options the task did not check
        raise PluginError(f"task {exp.task.name!r} could not build its data from the options in "
                          f"{exp.source or 'the experiment'} ({type(exc).__name__}: {exc}); "
                          f"check the [task] values (--debug shows where it failed)") from exc
    check_lengths(dataset, exp.task.name)
    if dataset.chunk_length:
        streams_layout(dataset, exp)
    dtype = np.dtype(exp.model.dtype)
    # padding zeroed once here: whatever a task writes there reaches no backend
    dataset.splits = {name: inert_padding(cast(s, dtype), dataset.target)
                      for name, s in dataset.splits.items()}
    missing = [s for s in SPLITS if s not in dataset.splits or len(dataset.splits[s]) == 0]
    if missing:
        raise PluginError(f"task {exp.task.name!r} built no data for split(s): {missing}")
    backend = load_backend(exp, registry)
    if has_lengths(dataset):
        try:
            check_backend_supports(backend, exp.task.name)
        except PluginError as exc:
            raise ConfigError(str(exc), source=str(exp.source or ""), table="train",
                              key="backend") from None
    check_fits_in_memory(exp, Shape(dataset.input_size, dataset.output_size))
    params = init_params(exp.model, Shape(dataset.input_size, dataset.output_size), rngs["init"])
    model = Model(exp.model, backend, params)
    optimizer = Optimizer(exp.train, params)
    plan = EpochPlan(exp.model, exp.train, dataset.loss, dataset.target)
    return Session(exp, task, dataset, backend, model, optimizer, rngs, plan)


def streams_layout(dataset: Dataset, exp: Experiment) -> None:
    """Stateful mode: cut the train stream into ``batch_size`` parallel streams."""
    check_stream_dataset(dataset, exp.task.name)
    if "train" in dataset.splits:
        dataset.splits["train"] = parallel_streams(
            dataset.splits["train"], exp.train.batch_size, dataset.chunk_length,
            source=str(exp.source or ""))


def epoch_order(rng: np.random.Generator, split: Split, cfg: TrainConfig) -> np.ndarray:
    """The order in which an epoch takes the train sequences: a permutation from the shuffle
    generator, bucketed by length when ``train.bucket_by_length`` is set and the split has
    lengths (:func:`rnnlab.lengths.bucketed_order`)."""
    if cfg.bucket_by_length and split.lengths is not None:
        return bucketed_order(rng, split.lengths, cfg.batch_size)
    return rng.permutation(len(split))


class NonFiniteError(ArithmeticError):
    """A batch's loss or gradient norm is NaN or infinite (raised before its optimizer step)."""

    def __init__(self, batch: int, what: str, value: float):
        super().__init__(f"{what} is {value} at batch {batch}")
        self.batch, self.what, self.value = batch, what, value  # batch: 1-based, in the epoch


def reference_epoch(model: Model, optimizer: Optimizer, plan: EpochPlan, split: Split,
                    order: np.ndarray, lr: float, *, start: int = 0,
                    after_batch: Callable[[float], bool] | None = None) -> np.ndarray:
    """One pass over ``split`` in minibatches taken in ``order``; returns the batch losses.

    ``start`` skips the first batches (an epoch resumed from a checkpoint). ``after_batch(loss)``
    is called after each optimizer step; when it returns True the epoch stops there. A NaN or
    infinite loss or gradient raises NonFiniteError before the step, leaving params untouched.
    """
    B = plan.train.batch_size
    losses = []
    for b in range(start, num_batches(len(order), B)):
        part = batch(split, order[b * B:(b + 1) * B], plan.target)  # trimmed to its longest
        loss, grads, _ = model.loss_and_grads(part.x, part.y, plan.loss, plan.target,
                                              lengths=part.lengths)
        # clip in place; with grad_clip = "none" this only measures the global norm
        norm = clip_gradients(grads, plan.train.grad_clip, plan.train.grad_clip_value)
        if not math.isfinite(loss):
            raise NonFiniteError(b + 1, "the loss", loss)
        if not math.isfinite(norm):
            raise NonFiniteError(b + 1, "the gradient norm", norm)
        optimizer.step(model.params, grads, lr)
        losses.append(loss)
        if after_batch is not None and after_batch(loss):
            break
    return np.asarray(losses)


def num_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def epoch_loss(batch_losses: np.ndarray, n: int, batch_size: int) -> float:
    """Mean loss per sequence over the epoch (the last batch may be smaller)."""
    sizes = np.full(len(batch_losses), batch_size, dtype=float)
    sizes[-1] = n - batch_size * (len(batch_losses) - 1)
    return float(np.dot(batch_losses, sizes) / n)


def divergence_hint(cfg: TrainConfig) -> str:
    """What to change when training produced NaN or infinity."""
    hints = [f"a smaller train.learning_rate (now {cfg.learning_rate:g})"]
    if cfg.grad_clip == "none":
        hints.append('gradient clipping (train.grad_clip = "norm", train.grad_clip_value = 1.0)')
    else:
        hints.append(f"a smaller train.grad_clip_value (now {cfg.grad_clip_value:g})")
    return f"try {' or '.join(hints)}"


def train_epoch(session: Session, runner, position: EpochPosition, lr: float,
                after_batch: Callable[[float], bool] | None = None) -> float | None:
    """One pass over the train split by the backend's runner, the reference loop, or (stateful
    dataset) truncated BPTT over parallel streams; returns the mean training loss, or None when
    ``after_batch`` stopped the reference loop between two batches (``position`` then says
    where). Only the reference loop can resume an epoch in its middle, so it finishes any epoch
    a checkpoint left half done."""
    model, data = session.model, session.dataset
    train, B = data.splits["train"], session.experiment.train.batch_size
    if data.chunk_length:
        loss = stateful_epoch(model, session.optimizer, session.plan, train, data.chunk_length, lr)
        check_finite([loss], model.params)
        return loss
    if runner is not None and position.batches_done == 0:
        lengths = {} if train.lengths is None else {"lengths": train.lengths}
        losses = runner(model.params, session.optimizer, train.x, train.y, position.order, lr,
                        **lengths)
        position.losses = [float(v) for v in losses]
        check_finite(position.losses, model.params)
    else:
        reference_epoch(model, session.optimizer, session.plan, train, position.order, lr,
                        start=position.batches_done, after_batch=after_batch)
        if position.batches_done < num_batches(len(train), B):
            return None
    return epoch_loss(np.asarray(position.losses), len(train), B)


def split_loss(model: Model, data: Dataset, name: str) -> float:
    """The training loss on one split (state carried through a stateful dataset's stream)."""
    split = data.splits[name]
    if data.chunk_length:
        return stream_loss(model, split, data.loss, data.chunk_length)
    return model.loss(split.x, split.y, data.loss, data.target, lengths=split.lengths)


def warm_up(session: Session, info: RunInfo, on_status=None):
    """Let the backend get ready (it may compile kernels) and ask it for its epoch runner, timed
    together as its warm-up; ``on_status(message)`` hears about it. The runner is None for a
    stateful dataset, which the core walks itself."""
    name = session.experiment.train.backend
    if on_status is not None:
        on_status(f"preparing backend {name!r} (may compile kernels on first use) ...")
    t0 = time.perf_counter()
    backend = session.backend  # warm_up and epoch_runner are optional (Backend has defaults)
    if hasattr(backend, "warm_up"):
        backend.warm_up(session.plan)
    runner = None
    # no backend runner for data with lengths yet: it will be asked once plans carry features
    if (not session.dataset.chunk_length and not has_lengths(session.dataset)
            and hasattr(backend, "epoch_runner")):
        runner = backend.epoch_runner(session.plan)
    info.warmup_seconds = time.perf_counter() - t0
    if on_status is not None:
        on_status(f"backend {name!r} ready in {info.warmup_seconds:.2f} s")
    return runner


def fit(session: Session, registry, info: RunInfo, on_epoch=None, *,
        state: TrainState | None = None, save: Callable[[TrainState], None] | None = None,
        stop: StopSignal | None = None, on_status=None) -> list[dict]:
    """Train until ``train.epochs`` epochs are done (or a hook asks to stop); return the history.

    ``state`` continues a checkpointed run whose parameters, optimizer and generators the caller
    has restored. ``save(state)`` writes a checkpoint; it is called as ``train.checkpoint_every``
    and ``train.checkpoint_seconds`` ask, after the last epoch, and when ``stop`` is raised (seen
    after every batch of the core loop, after every epoch of a backend's epoch runner), after
    which RunInterrupted is raised. A NaN or infinite loss or gradient raises TrainingDiverged
    without saving, so the last checkpoint is the last good one. With ``keep_best`` the model
    ends with the parameters of its best validation epoch. ``on_status(message)`` hears about
    the backend's warm-up.
    """
    exp, model, data = session.experiment, session.model, session.dataset
    train = data.splits["train"]
    n_batches = num_batches(len(train), exp.train.batch_size)
    runner = warm_up(session, info, on_status)
    state = state if state is not None else TrainState()
    schedule = CheckpointSchedule(exp.train.checkpoint_every, exp.train.checkpoint_seconds)

    def checkpoint() -> None:
        if save is not None:
            save(state)
        schedule.written()

    def after_batch(loss: float) -> bool:
        state.position.losses.append(loss)
        if stop is not None and stop.requested:
            return True
        if schedule.due_after_batch():
            checkpoint()
        return False

    info.epoch, info.history = state.epoch, state.history
    registry.call("on_run_start", run=info)
    saved_epoch = None
    while state.epoch < exp.train.epochs:
        epoch = state.epoch + 1  # 1-based number of the epoch being run
        lr = learning_rate(exp.train, epoch - 1)
        if state.position is None:
            state.position = EpochPosition(epoch_order(session.rngs["shuffle"], train, exp.train),
                                           [])
        position = state.position
        t0 = time.perf_counter()
        try:
            loss = train_epoch(session, runner, position, lr, after_batch)
        except NonFiniteError as exc:
            raise TrainingDiverged(f"training diverged: {exc.what} is {exc.value} at epoch "
                                   f"{epoch}, batch {exc.batch} of {n_batches}; "
                                   f"{divergence_hint(exp.train)}") from None
        seconds = time.perf_counter() - t0
        if loss is None:  # stopped between two batches
            checkpoint()
            raise RunInterrupted(stop.signum, f"{stop.name} at epoch {epoch}, after batch "
                                              f"{position.batches_done} of {n_batches}")
        val_loss = split_loss(model, data, "val")
        if not math.isfinite(val_loss):
            raise TrainingDiverged(f"training diverged: the validation loss is {val_loss} after "
                                   f"epoch {epoch}; {divergence_hint(exp.train)}")
        record = {"epoch": epoch, "loss": loss,
                  "val_loss": val_loss, "lr": lr, "seconds": seconds}
        if val_loss < state.best_loss:
            state.best_loss, state.best_epoch = val_loss, epoch
            state.best_params = {k: v.copy() for k, v in model.params.items()}
        record["best_epoch"] = state.best_epoch
        state.epoch, state.position = epoch, None
        info.epoch = epoch
        state.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if stop is not None and stop.requested:
            checkpoint()
            raise RunInterrupted(stop.signum, f"{stop.name} after epoch {epoch}")
        if any(registry.call("on_epoch_end", run=info, epoch=epoch, metrics=record)):
            info.stop_reason = "stopped by a plugin"
            break
        if schedule.due_after_epoch(epoch):
            checkpoint()
            saved_epoch = epoch
    if saved_epoch != state.epoch:  # the end of training always has a checkpoint
        checkpoint()
    if exp.train.keep_best and state.best_params is not None:
        for k, v in state.best_params.items():
            model.params[k][...] = v
    return info.history


def check_finite(batch_losses: list[float], params: dict[str, np.ndarray]) -> None:
    """After an epoch the core loop did not run step by step (a backend's epoch runner, a
    stateful epoch): every batch loss and parameter must be finite."""
    for b, loss in enumerate(batch_losses):
        if not math.isfinite(loss):
            raise NonFiniteError(b + 1, "the loss", loss)
    for name, p in params.items():
        if not np.all(np.isfinite(p)):
            raise NonFiniteError(len(batch_losses), f"a value of {name} (after the epoch)",
                                 float(p[~np.isfinite(p)].flat[0]))


def evaluate(session: Session) -> dict[str, dict[str, float]]:
    """The task's metrics on every split, with the loss the model was trained on."""
    model, data = session.model, session.dataset
    out = {}
    for name in SPLITS:
        metrics = {"loss": split_loss(model, data, name)}
        metrics.update(session.task.metrics(model, data, name))
        out[name] = {k: float(v) for k, v in metrics.items()}
    return out
