"""The experiment file's schema: one typed, frozen dataclass per core table, each field declared
with its default, the values it accepts and a one-line meaning.

These declarations are the single source of the option tables the validator checks
(:data:`CORE_TABLES`, :func:`rnnlab.experiment.config.build_experiment`), of its messages, of the
JSON Schema editors read (``rnnlab schema``) and of the reference of every key. A field is
declared with :func:`setting`; its Python type (``int``, ``float``, ``str``, ``bool`` or
``list[str]``) is the type the file must give::

    hidden_size: int = setting(32, "hidden units per layer", gt=0)

This module imports nothing of rnnlab but the plugin-facing specs, so that the numeric model,
the optimizer and the plugin registry read their configuration from here without importing the
reader of experiment files.
"""

from __future__ import annotations

import copy
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..specs import DTYPES, Option

OPTIMIZERS = ("sgd", "adam", "adagrad")
NAME_LENGTH = 200  # a run directory is named <name>-<time>: within a file name's 255 bytes
OPTION_KEY = "rnnlab.option"  # a field's metadata entry: what setting() declared


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    max_length: int | None = None,
) -> Any:
    """A config field: its default, its meaning and the values it accepts (``choices``;
    ``ge``/``gt``/``le``/``lt``: inclusive / exclusive bounds; ``max_length`` of a string). A
    list default is copied for each instance."""
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "max_length": max_length}
    meta = {OPTION_KEY: {"help": help, "choices": choices, **bounds}}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def options_of(cls: type) -> tuple[Option, ...]:
    """The :class:`rnnlab.specs.Option` of every field of a config class declared with
    :func:`setting`, in order: the table the validator checks and the JSON Schema describes."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if OPTION_KEY not in f.metadata:
            continue
        kind, item = _python_type(hints[f.name], f"{cls.__name__}.{f.name}")
        default = f.default if f.default is not MISSING else f.default_factory()
        out.append(Option(f.name, kind, default, item=item, **f.metadata[OPTION_KEY]))
    return tuple(out)


def _python_type(hint: Any, where: str) -> tuple[type, type | None]:
    """``int`` -> ``(int, None)``; ``list[str]`` -> ``(list, str)``."""
    if hint in (int, float, str, bool):
        return hint, None
    if typing.get_origin(hint) is list and typing.get_args(hint)[0] in (int, float, str, bool):
        return list, typing.get_args(hint)[0]
    raise TypeError(f"{where}: a setting's type must be int, float, str, bool or a list of one")


@dataclass(frozen=True)
class ExperimentConfig:
    """The [experiment] table: name, seed, plugin files."""

    name: str = setting(
        "",
        "name of the experiment (default: the file's stem); it names the run directories",
        max_length=NAME_LENGTH,
    )
    seed: int = setting(0, "seed of every random draw", ge=0)
    plugins: list[str] = setting([], "plugin files to load, relative to the experiment file")


@dataclass(frozen=True)
class TaskConfig:
    """The [task] table: the task's name and its options (declared by the task's plugin)."""

    name: str
    options: dict[str, Any]


@dataclass(frozen=True)
class ModelConfig:
    """The [model] table: cell, sizes, nonlinearity, dtype, init."""

    cell: str = setting("rnn", "recurrent cell: rnn, lstm, gru or one a plugin registers")
    hidden_size: int = setting(32, "hidden units per layer", gt=0)
    layers: int = setting(1, "stacked recurrent layers", gt=0)
    nonlinearity: str = setting(
        "tanh",
        "activation; each cell accepts its own (rnn: tanh, relu; indrnn: relu, tanh; lru: gelu, "
        "tanh, relu, identity; lstm, gru: tanh; mingru, minlstm: identity); not set: the "
        "cell's default (its first)",
    )
    dtype: str = setting("float64", "floating-point type of parameters and data", choices=DTYPES)
    forget_bias: float = setting(
        0.0,
        "lstm only: when not 0, after the default init set the forget-gate slice of every "
        "layer's bias_ih to this value and of bias_hh to 0, so the gate's total bias is this "
        "value (0 keeps PyTorch's default init)",
    )
    bidirectional: bool = setting(
        False,
        "every layer also runs in reverse (each sequence within its own length); per-step "
        "outputs are [forward ; reverse], 2*hidden_size wide (torch.nn.RNN/LSTM/GRU's "
        "bidirectional=True)",
    )
    dropout: float = setting(
        0.0,
        "probability of dropping each output of every layer but the last, while training "
        "only (torch.nn.RNN/LSTM/GRU's dropout); masks come from the run's seeded generator",
        ge=0,
        le=1,
    )
    chrono_tmax: float = setting(
        0.0,
        "lstm, gru: chrono initialisation for dependencies up to this many steps (Tallec & "
        "Ollivier 2018): lstm forget bias log U(1, T-1) and input bias its negative, gru "
        "update-gate bias log U(1, T-1), in bias_ih with bias_hh's slice 0; 0: off",
        ge=0,
    )
    r_min: float = setting(0.0, "lru: smallest |lambda| drawn at init (a ring)", ge=0, lt=1)
    r_max: float = setting(1.0, "lru: largest |lambda| drawn at init", gt=0, le=1)
    max_phase: float = setting(6.28, "lru: largest phase of lambda drawn at init", gt=0)


@dataclass(frozen=True)
class TrainConfig:
    """The [train] table: backend, epochs, batches, optimizer, clipping, schedule, checkpoints."""

    backend: str = setting("numpy", "backend plugin that runs the recurrence")
    epochs: int = setting(100, "passes over the training split", gt=0)
    batch_size: int = setting(32, "sequences per minibatch", gt=0)
    optimizer: str = setting("adam", "optimizer", choices=OPTIMIZERS)
    learning_rate: float = setting(0.01, "step size", gt=0)
    momentum: float = setting(0.0, "sgd momentum", ge=0, le=1)
    beta1: float = setting(0.9, "adam first-moment decay", ge=0, lt=1)  # 1: divides by 0
    beta2: float = setting(0.999, "adam second-moment decay", ge=0, lt=1)
    eps: float = setting(1e-8, "adam/adagrad denominator term", gt=0)
    weight_decay: float = setting(0.0, "L2 penalty added to the gradient", ge=0)
    grad_clip: str = setting("norm", "gradient clipping", choices=("none", "norm", "value"))
    grad_clip_value: float = setting(1.0, "max global norm, or max |value|", gt=0)
    schedule: str = setting(
        "constant", "learning-rate schedule over epochs", choices=("constant", "cosine")
    )
    keep_best: bool = setting(True, "end with the parameters of the best validation epoch")
    bucket_by_length: bool = setting(
        False,
        "with sequences of different lengths: batches of similar lengths (seeded, each "
        "epoch in a new random order), so that short sequences do not pay for long ones",
    )
    checkpoint_every: int = setting(1, "epochs between checkpoints (0: only by time)", ge=0)
    checkpoint_seconds: float = setting(
        60.0,
        "also checkpoint when this much wall time passed since the last one (0: never)",
        ge=0,
    )
    threads: int = setting(
        0,
        "threads a backend may use: numba's compiled epoch, NumPy's BLAS on the numpy backend "
        "(0: chosen by the problem's size); numba's results are the same whatever the number, "
        "NumPy's may differ in the last bit for products summed over many rows",
        ge=0,
    )


@dataclass(frozen=True)
class CompareConfig:
    """The [compare] table: what `rnnlab compare` runs, and how often."""

    backends: list[str] = setting([], "backends `rnnlab compare` runs (default: all available)")
    repeats: int = setting(3, "runs per backend, interleaved", gt=0)


@dataclass(frozen=True)
class DiagnosticsConfig:
    """The [diagnostics] table: when the gradient flow and the recurrent health are recorded,
    and on how many sequences."""

    every: int = setting(
        0,
        "also record the gradient flow every k epochs in metrics.jsonl "
        "(0: only at the end of training)",
        ge=0,
    )
    health_every: int = setting(
        2,
        "record recurrent health (spectral radius, saturation, "
        "forget gate) every k epochs (0: never); 2 keeps its cost under 5% of an epoch at "
        "the article's size (benchmarks/diagnostics_overhead.py)",
        ge=0,
    )
    sample_size: int = setting(
        256,
        "validation sequences (or chunks of a stateful task's "
        "stream) the diagnostics are measured on, at most",
        gt=0,
    )


CORE_CLASSES: dict[str, type] = {
    "experiment": ExperimentConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "compare": CompareConfig,
    "diagnostics": DiagnosticsConfig,
}
CORE_TABLES: dict[str, tuple[Option, ...]] = {
    name: options_of(cls) for name, cls in CORE_CLASSES.items()
}
EXPERIMENT_OPTIONS = CORE_TABLES["experiment"]
MODEL_OPTIONS = CORE_TABLES["model"]
TRAIN_OPTIONS = CORE_TABLES["train"]
COMPARE_OPTIONS = CORE_TABLES["compare"]
DIAGNOSTICS_OPTIONS = CORE_TABLES["diagnostics"]
TABLES = ("experiment", "task", "model", "train", "compare", "diagnostics")
SWEEP = "sweep"  # read by `rnnlab sweep` (rnnlab.sweep); a single experiment refuses it
SWEEP_KEYS = ("seeds", "variants")  # the [sweep] table's own keys; any other is a grid axis
SEARCH = "search"  # read by `rnnlab search` (rnnlab.search); a single experiment refuses it
STATS = "stats"  # read by `rnnlab stats` (rnnlab.analysis); a single experiment ignores it
STUDY_TABLES = (SWEEP, SEARCH, STATS)  # about many runs of the experiment, not part of it
SAMPLERS = ("tpe", "random", "grid", "qmc")  # [search] sampler
PRUNERS = ("none", "median", "asha", "hyperband", "wilcoxon")  # [search] pruner
DIRECTIONS = ("minimize", "maximize")  # [search] and [stats] direction


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: one typed value per core table, the task's options and the
    tables plugins declare."""

    experiment: ExperimentConfig
    task: TaskConfig
    model: ModelConfig
    train: TrainConfig
    source: Path | None = field(default=None, compare=False)
    compare: CompareConfig = field(default_factory=CompareConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    # tables plugins declare (rnnlab.plugin.TableSpec) that the experiment sets: name ->
    # validated values, defaults filled in
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment as TOML-ready tables (every default made explicit; the
        ``[compare]`` and ``[diagnostics]`` tables only when they are not the default)."""
        out = {
            "experiment": asdict(self.experiment),
            "task": {"name": self.task.name, **self.task.options},
            "model": asdict(self.model),
            "train": asdict(self.train),
        }
        if self.compare != CompareConfig():
            out["compare"] = asdict(self.compare)
        if self.diagnostics != DiagnosticsConfig():
            out["diagnostics"] = asdict(self.diagnostics)
        out.update(copy.deepcopy(self.tables))
        return out
