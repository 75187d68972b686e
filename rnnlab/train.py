"""The training loop: seeded shuffling, minibatch BPTT, clipping, optimizer steps, validation,
and the lifecycle hooks.

The loop below (:func:`reference_epoch`) is the reference. A backend may take over a whole epoch
through ``Backend.epoch_runner``; such a runner must update parameters and optimizer state as
this loop does, and is tested against it. A stateful dataset (``Dataset.chunk_length > 0``) is
trained and scored by :mod:`rnnlab.streams` instead, never by a backend's runner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Experiment, ModelConfig, TrainConfig
from .errors import ConfigError, PluginError
from .model import Model, Shape, init_params
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


def cast(split: Split, dtype: np.dtype) -> Split:
    y = split.y.astype(dtype) if np.issubdtype(split.y.dtype, np.floating) else split.y
    return Split(np.ascontiguousarray(split.x, dtype=dtype), y)


def prepare(exp: Experiment, registry) -> Session:
    """Build the task's data, the backend, the parameters and the optimizer for one run."""
    rngs = generators(exp.experiment.seed)
    task = registry.task(exp.task.name).factory(dict(exp.task.options), TaskContext(exp.base_dir))
    try:
        dataset = task.build(rngs["data"])
    except ConfigError as exc:  # a task's own check of its options: name the file
        raise exc.located(str(exp.source or "")) from None
    if dataset.chunk_length:
        streams_layout(dataset, exp)
    dtype = np.dtype(exp.model.dtype)
    dataset.splits = {name: cast(s, dtype) for name, s in dataset.splits.items()}
    missing = [s for s in SPLITS if s not in dataset.splits or len(dataset.splits[s]) == 0]
    if missing:
        raise PluginError(f"task {exp.task.name!r} built no data for split(s): {missing}")
    backend = load_backend(exp, registry)
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


def batch_targets(y: np.ndarray, idx: np.ndarray, target: str) -> np.ndarray:
    return y[idx] if target == "last" else y[:, idx]


def reference_epoch(model: Model, optimizer: Optimizer, plan: EpochPlan, split: Split,
                    order: np.ndarray, lr: float) -> np.ndarray:
    """One pass over ``split`` in minibatches taken in ``order``; returns the batch losses."""
    B = plan.train.batch_size
    losses = []
    for start in range(0, len(order), B):
        idx = order[start:start + B]
        loss, grads, _ = model.loss_and_grads(split.x[:, idx],
                                              batch_targets(split.y, idx, plan.target),
                                              plan.loss, plan.target)
        if plan.train.grad_clip != "none":
            clip_gradients(grads, plan.train.grad_clip, plan.train.grad_clip_value)
        optimizer.step(model.params, grads, lr)
        losses.append(loss)
    return np.asarray(losses)


def epoch_loss(batch_losses: np.ndarray, n: int, batch_size: int) -> float:
    """Mean loss per sequence over the epoch (the last batch may be smaller)."""
    sizes = np.full(len(batch_losses), batch_size, dtype=float)
    sizes[-1] = n - batch_size * (len(batch_losses) - 1)
    return float(np.dot(batch_losses, sizes) / n)


def train_epoch(session: Session, runner, order: np.ndarray, lr: float) -> float:
    """One pass over the train split by the backend's runner, the reference loop, or (stateful
    dataset) truncated BPTT over parallel streams; returns the mean training loss."""
    model, data = session.model, session.dataset
    train, B = data.splits["train"], session.experiment.train.batch_size
    if data.chunk_length:
        return stateful_epoch(model, session.optimizer, session.plan, train, data.chunk_length, lr)
    if runner is not None:
        losses = runner(model.params, session.optimizer, train.x, train.y, order, lr)
    else:
        losses = reference_epoch(model, session.optimizer, session.plan, train, order, lr)
    return epoch_loss(losses, len(train), B)


def split_loss(model: Model, data: Dataset, name: str) -> float:
    """The training loss on one split (state carried through a stateful dataset's stream)."""
    split = data.splits[name]
    if data.chunk_length:
        return stream_loss(model, split, data.loss, data.chunk_length)
    return model.loss(split.x, split.y, data.loss, data.target)


def fit(session: Session, registry, info: RunInfo, on_epoch=None, on_status=None) -> list[dict]:
    """Train for the configured epochs (or until a hook asks to stop); return the history.

    With ``keep_best`` the model ends with the parameters of its best validation epoch.
    ``on_status(message)`` hears about the backend's warm-up (which may compile kernels).
    """
    exp, model, data = session.experiment, session.model, session.dataset
    train = data.splits["train"]
    name = exp.train.backend
    if on_status is not None:
        on_status(f"preparing backend {name!r} (may compile kernels on first use) ...")
    t0 = time.perf_counter()
    runner = None if data.chunk_length else session.backend.epoch_runner(session.plan)
    info.warmup_seconds = time.perf_counter() - t0
    if on_status is not None:
        on_status(f"backend {name!r} ready in {info.warmup_seconds:.2f} s")
    best = (np.inf, 0, None)
    registry.call("on_run_start", run=info)
    for epoch in range(exp.train.epochs):
        lr = learning_rate(exp.train, epoch)
        order = session.rngs["shuffle"].permutation(len(train))
        t0 = time.perf_counter()
        loss = train_epoch(session, runner, order, lr)
        seconds = time.perf_counter() - t0
        val_loss = split_loss(model, data, "val")
        record = {"epoch": epoch + 1, "loss": loss,
                  "val_loss": val_loss, "lr": lr, "seconds": seconds}
        if val_loss < best[0]:
            best = (val_loss, epoch + 1, {k: v.copy() for k, v in model.params.items()})
        record["best_epoch"] = best[1]
        info.epoch = epoch + 1
        info.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if any(registry.call("on_epoch_end", run=info, epoch=epoch + 1, metrics=record)):
            info.stop_reason = "stopped by a plugin"
            break
    if exp.train.keep_best and best[2] is not None:
        for k, v in best[2].items():
            model.params[k][...] = v
    return info.history


def evaluate(session: Session) -> dict[str, dict[str, float]]:
    """The task's metrics on every split, with the loss the model was trained on."""
    model, data = session.model, session.dataset
    out = {}
    for name in SPLITS:
        metrics = {"loss": split_loss(model, data, name)}
        metrics.update(session.task.metrics(model, data, name))
        out[name] = {k: float(v) for k, v in metrics.items()}
    return out
