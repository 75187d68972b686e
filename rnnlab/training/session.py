"""Building a run's session from an experiment: the seeded generators, the task's data (cast
to the model's dtype), the backend (available, and implementing the cell and dtype), the
parameters, the optimizer and the plan a backend's epoch runner must reproduce. Nothing here
trains: the loop is in :mod:`rnnlab.training.loop`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cells import CellSpec
from ..errors import ConfigError, PluginError
from ..experiment.schema import Experiment, ModelConfig, TrainConfig
from ..nn.features import features_of
from ..nn.lengths import check_backend_supports, check_lengths, has_lengths, inert_padding
from ..nn.model import Model, Shape, init_params
from ..nn.optim import Optimizer
from ..registry import failures
from ..specs import Backend, Dataset, Split, Task, TaskContext
from .datacheck import dataset_problem
from .memory import check_fits_in_memory
from .stateful import check_stream_dataset, parallel_streams

SPLITS = ("train", "val", "test")
# one independent generator per use; a new stream is added at the end only, so that the
# streams before it draw exactly what they drew before it existed (SeedSequence.spawn)
STREAMS = ("data", "init", "shuffle", "demo", "dropout")


@dataclass(frozen=True)
class EpochPlan:
    """What a backend's epoch runner must reproduce: model, training settings, loss and target.

    A stateful dataset gives ``chunk_length > 0`` (the feature ``"chunk_length"``): truncated
    BPTT over parallel streams, the state carried from chunk to chunk, as
    :func:`rnnlab.training.stateful.stateful_epoch` walks them (see ``Backend.epoch_runner``).
    """

    model: ModelConfig
    train: TrainConfig
    loss: str
    target: str
    # the train split has per-sequence lengths (keyword-only: plans stay positional as before)
    lengths: bool = field(default=False, kw_only=True)
    # a stateful dataset's chunk length (0: independent sequences)
    chunk_length: int = field(default=0, kw_only=True)

    # fields the core applies around an epoch (which backend, how many epochs, the learning
    # rate passed to each epoch, initialisation, checkpoints, the epoch's order), and threads,
    # which change no result: no runner has to implement them
    AROUND_EPOCH = frozenset(
        {
            "threads",
            "backend",
            "epochs",
            "schedule",
            "keep_best",
            "checkpoint_every",
            "checkpoint_seconds",
            "forget_bias",
            "chrono_tmax",
            "r_min",
            "r_max",
            "max_phase",
            "bucket_by_length",
        }
    )

    def features(self) -> frozenset[str]:
        """Every feature this plan uses, derived from its fields (nested configs included), so
        that a field added later is a feature no existing runner declares.

        A string field gives ``"name=value"`` (``"cell=lstm"``, ``"loss=xent"``); any other
        field gives ``"name"`` when it is set (true, non-zero, not None, not empty:
        ``"momentum"``, ``"lengths"``) and nothing when it is off. Fields in ``AROUND_EPOCH``
        give nothing.
        """
        return features_of(self, self.AROUND_EPOCH)

    def uncovered(self, declared) -> frozenset[str]:
        """The features of this plan not in ``declared`` (a runner's ``epoch_features``)."""
        return self.features() - frozenset(declared)


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
    """Independent generators for data, initialisation, shuffling, demos and dropout masks,
    from one seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, children, strict=True)}


def load_backend(exp: Experiment, registry) -> Backend:
    """The backend the experiment names, checked for availability, cell and dtype."""
    spec = registry.backend(exp.train.backend)
    reason = spec.unavailable()
    if reason:
        raise ConfigError(
            f"backend {spec.name!r} is unavailable here: {reason}",
            source=str(exp.source or ""),
            table="train",
            key="backend",
        )
    try:
        backend = failures.guarded_backend(registry, spec)
    except ImportError as exc:
        raise ConfigError(
            f"backend {spec.name!r} cannot be loaded: {exc}",
            source=str(exp.source or ""),
            table="train",
            key="backend",
        ) from None
    cell = registry.cells.get(exp.model.cell)
    if cell is not None and not runs_cell(backend, cell):
        others = backends_running(cell, registry, skip=spec.name)
        advice = (
            f"backends that run it: {', '.join(map(repr, others))}"
            if others
            else "no backend here runs it: a backend runs a cell it lists in Backend.cells, "
            "and the reference 'numpy' any cell whose spec carries numpy kernels"
        )
        raise ConfigError(
            f"backend {spec.name!r} does not support cell {exp.model.cell!r} ({advice})",
            source=str(exp.source or ""),
            table="model",
            key="cell",
        )
    if exp.model.dtype not in backend.dtypes:
        raise ConfigError(
            f"backend {spec.name!r} does not support dtype {exp.model.dtype!r} "
            f"(supported: {', '.join(backend.dtypes)})",
            source=str(exp.source or ""),
            table="model",
            key="dtype",
        )
    return backend


def runs_cell(backend: Backend, cell: CellSpec) -> bool:
    """Whether ``backend`` runs ``cell`` (``Backend.runs_cell``, else its ``cells``)."""
    check = getattr(backend, "runs_cell", None)
    return bool(check(cell)) if check is not None else cell.name in backend.cells


def backends_running(cell: CellSpec, registry, skip: str = "") -> list[str]:
    """The available backends of ``registry`` that run ``cell`` (each loaded to ask it)."""
    found = []
    for name, spec in registry.backends.items():
        if name == skip or spec.unavailable():
            continue
        try:
            if runs_cell(spec.load(), cell):
                found.append(name)
        except Exception:  # a backend that cannot load runs nothing here
            continue
    return found


def cast(split: Split, dtype: np.dtype) -> Split:
    y = split.y.astype(dtype) if np.issubdtype(split.y.dtype, np.floating) else split.y
    return Split(np.ascontiguousarray(split.x, dtype=dtype), y, split.lengths)


def prepare(exp: Experiment, registry) -> Session:
    """Build the task's data, the backend, the parameters and the optimizer for one run."""
    rngs = generators(exp.experiment.seed)
    task = failures.guarded_task(
        registry, exp.task.name, dict(exp.task.options), TaskContext(exp.base_dir)
    )
    try:
        dataset = task.build(rngs["data"])
    except ConfigError as exc:  # a task's own check of its options: name the file
        raise exc.located(str(exp.source or "")) from None
    # any other exception is the plugin's bug, reported with its file and line
    problem = dataset_problem(dataset)
    if problem is not None:
        where = ", " if problem.startswith("split ") else " built data rnnlab cannot train on: "
        raise PluginError(
            f"plugin {registry.provider('task', exp.task.name)}: task {exp.task.name!r}"
            f"{where}{problem} (rnnlab.testing.check_task checks a task's data)"
        )
    check_lengths(dataset, exp.task.name)
    if dataset.chunk_length and exp.model.bidirectional:
        raise ConfigError(
            f"task {exp.task.name!r} is stateful (one continuous stream, the "
            f"state carried forward from chunk to chunk) and a reverse direction "
            f"cannot carry state forward; set model.bidirectional = false",
            source=str(exp.source or ""),
            table="model",
            key="bidirectional",
        )
    if dataset.chunk_length:
        streams_layout(dataset, exp)
    dtype = np.dtype(exp.model.dtype)
    # padding zeroed once here: whatever a task writes there reaches no backend
    dataset.splits = {
        name: inert_padding(cast(s, dtype), dataset.target) for name, s in dataset.splits.items()
    }
    missing = [s for s in SPLITS if s not in dataset.splits or len(dataset.splits[s]) == 0]
    if missing:
        raise PluginError(f"task {exp.task.name!r} built no data for split(s): {missing}")
    backend = load_backend(exp, registry)
    if has_lengths(dataset):
        try:
            check_backend_supports(backend, exp.task.name)
        except PluginError as exc:
            why = str(exc)
            if exp.model.bidirectional:  # say why a reverse direction needs the feature too
                why += (
                    "; model.bidirectional needs it as well, as each sequence's reverse "
                    "direction starts at its own last step"
                )
            raise ConfigError(
                why, source=str(exp.source or ""), table="train", key="backend"
            ) from None
    cell = registry.cell(exp.model.cell)
    shape = Shape(dataset.input_size, dataset.output_size)
    check_fits_in_memory(exp, dataset, shape, cell)
    params = init_params(exp.model, shape, rngs["init"], cell)
    model = Model(exp.model, backend, params, cell)
    model.target = dataset.target  # a task's metrics predict where its targets are
    optimizer = Optimizer(exp.train, params)
    plan = EpochPlan(
        exp.model,
        exp.train,
        dataset.loss,
        dataset.target,
        lengths=dataset.splits["train"].lengths is not None,
        chunk_length=dataset.chunk_length,
    )
    return Session(exp, task, dataset, backend, model, optimizer, rngs, plan)


def streams_layout(dataset: Dataset, exp: Experiment) -> None:
    """Stateful mode: cut the train stream into ``batch_size`` parallel streams."""
    check_stream_dataset(dataset, exp.task.name)
    if "train" in dataset.splits:
        dataset.splits["train"] = parallel_streams(
            dataset.splits["train"],
            exp.train.batch_size,
            dataset.chunk_length,
            source=str(exp.source or ""),
        )
