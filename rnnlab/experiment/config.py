"""Experiment files: TOML -> a typed, validated :class:`Experiment`, with ``--set`` overrides.

Every error names the file (or the ``--set`` that caused it), the table and the key, and for
unknown names the closest valid one.
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PluginError, closest
from ..specs import DTYPES, Option

OPTIMIZERS = ("sgd", "adam", "adagrad")

EXPERIMENT_OPTIONS = (
    Option("name", str, "", "name of the experiment (default: the file's stem)"),
    Option("seed", int, 0, "seed of every random draw", ge=0),
    Option("plugins", list, [], "plugin files to load, relative to the experiment file", item=str),
)
MODEL_OPTIONS = (
    Option("cell", str, "rnn", "recurrent cell: rnn, lstm, gru or one a plugin registers"),
    Option("hidden_size", int, 32, "hidden units per layer", gt=0),
    Option("layers", int, 1, "stacked recurrent layers", gt=0),
    Option(
        "nonlinearity",
        str,
        "tanh",
        "activation; each cell accepts its own (rnn: tanh, relu; indrnn: relu, tanh; lru: gelu, "
        "tanh, relu, identity; lstm, gru: tanh; mingru, minlstm: identity); not set: the "
        "cell's default (its first)",
    ),
    Option("dtype", str, "float64", "floating-point type of parameters and data", choices=DTYPES),
    Option(
        "forget_bias",
        float,
        0.0,
        "lstm only: when not 0, after the default init set the forget-gate slice of every "
        "layer's bias_ih to this value and of bias_hh to 0, so the gate's total bias is this "
        "value (0 keeps PyTorch's default init)",
    ),
    Option(
        "bidirectional",
        bool,
        False,
        "every layer also runs in reverse (each sequence within its own length); per-step "
        "outputs are [forward ; reverse], 2*hidden_size wide (torch.nn.RNN/LSTM/GRU's "
        "bidirectional=True)",
    ),
    Option(
        "dropout",
        float,
        0.0,
        "probability of dropping each output of every layer but the last, while training "
        "only (torch.nn.RNN/LSTM/GRU's dropout); masks come from the run's seeded generator",
        ge=0,
        le=1,
    ),
    Option(
        "chrono_tmax",
        float,
        0.0,
        "lstm, gru: chrono initialisation for dependencies up to this many steps (Tallec & "
        "Ollivier 2018): lstm forget bias log U(1, T-1) and input bias its negative, gru "
        "update-gate bias log U(1, T-1), in bias_ih with bias_hh's slice 0; 0: off",
        ge=0,
    ),
    Option("r_min", float, 0.0, "lru: smallest |lambda| drawn at init (a ring)", ge=0, lt=1),
    Option("r_max", float, 1.0, "lru: largest |lambda| drawn at init", gt=0, le=1),
    Option("max_phase", float, 6.28, "lru: largest phase of lambda drawn at init", gt=0),
)
TRAIN_OPTIONS = (
    Option("backend", str, "numpy", "backend plugin that runs the recurrence"),
    Option("epochs", int, 100, "passes over the training split", gt=0),
    Option("batch_size", int, 32, "sequences per minibatch", gt=0),
    Option("optimizer", str, "adam", "optimizer", choices=OPTIMIZERS),
    Option("learning_rate", float, 0.01, "step size", gt=0),
    Option("momentum", float, 0.0, "sgd momentum", ge=0, le=1),
    Option("beta1", float, 0.9, "adam first-moment decay", ge=0, lt=1),  # 1: divides by 0
    Option("beta2", float, 0.999, "adam second-moment decay", ge=0, lt=1),
    Option("eps", float, 1e-8, "adam/adagrad denominator term", gt=0),
    Option("weight_decay", float, 0.0, "L2 penalty added to the gradient", ge=0),
    Option("grad_clip", str, "norm", "gradient clipping", choices=("none", "norm", "value")),
    Option("grad_clip_value", float, 1.0, "max global norm, or max |value|", gt=0),
    Option(
        "schedule",
        str,
        "constant",
        "learning-rate schedule over epochs",
        choices=("constant", "cosine"),
    ),
    Option("keep_best", bool, True, "end with the parameters of the best validation epoch"),
    Option(
        "bucket_by_length",
        bool,
        False,
        "with sequences of different lengths: batches of similar lengths (seeded, each "
        "epoch in a new random order), so that short sequences do not pay for long ones",
    ),
    Option("checkpoint_every", int, 1, "epochs between checkpoints (0: only by time)", ge=0),
    Option(
        "checkpoint_seconds",
        float,
        60.0,
        "also checkpoint when this much wall time passed since the last one (0: never)",
        ge=0,
    ),
    Option(
        "threads",
        int,
        0,
        "threads a backend's compiled epoch may use (0: chosen by the problem's size); "
        "results are the same whatever the number",
        ge=0,
    ),
)
COMPARE_OPTIONS = (
    Option(
        "backends", list, [], "backends `rnnlab compare` runs (default: all available)", item=str
    ),
    Option("repeats", int, 3, "runs per backend, interleaved", gt=0),
)
DIAGNOSTICS_OPTIONS = (
    Option(
        "every",
        int,
        0,
        "also record the gradient flow every k epochs in metrics.jsonl "
        "(0: only at the end of training)",
        ge=0,
    ),
    Option(
        "health_every",
        int,
        2,
        "record recurrent health (spectral radius, saturation, "
        "forget gate) every k epochs (0: never); 2 keeps its cost under 5% of an epoch at "
        "the article's size (benchmarks/diagnostics_overhead.py)",
        ge=0,
    ),
    Option(
        "sample_size",
        int,
        256,
        "validation sequences (or chunks of a stateful task's "
        "stream) the diagnostics are measured on, at most",
        gt=0,
    ),
)
CORE_TABLES = {
    "experiment": EXPERIMENT_OPTIONS,
    "model": MODEL_OPTIONS,
    "train": TRAIN_OPTIONS,
    "compare": COMPARE_OPTIONS,
    "diagnostics": DIAGNOSTICS_OPTIONS,
}
TABLES = ("experiment", "task", "model", "train", "compare", "diagnostics")
SWEEP = "sweep"  # read by `rnnlab sweep` (rnnlab.sweep); a single experiment refuses it


def config_class(name: str, options: tuple[Option, ...], doc: str) -> type:
    """A frozen dataclass with one field per option, in order, whose defaults are the options'
    (so a table's keys, types and defaults are declared once, in its Option tuple)."""
    specs = []
    for o in options:
        if isinstance(o.default, list | dict):
            default = field(default_factory=lambda d=o.default: copy.deepcopy(d))
        else:
            default = field(default=o.default)
        specs.append((o.name, o.type, default))
    cls = make_dataclass(name, specs, frozen=True)
    cls.__module__, cls.__doc__ = (
        __name__,
        doc,
    )  # found by pickle as rnnlab.experiment.config.<name>
    return cls


ExperimentConfig = config_class(
    "ExperimentConfig", EXPERIMENT_OPTIONS, "The [experiment] table: name, seed, plugin files."
)


@dataclass(frozen=True)
class TaskConfig:
    name: str
    options: dict[str, Any]


ModelConfig = config_class(
    "ModelConfig", MODEL_OPTIONS, "The [model] table: cell, sizes, nonlinearity, dtype, init."
)
TrainConfig = config_class(
    "TrainConfig",
    TRAIN_OPTIONS,
    "The [train] table: backend, epochs, batches, optimizer, clipping, schedule, checkpoints.",
)
CompareConfig = config_class(
    "CompareConfig", COMPARE_OPTIONS, "The [compare] table read by `rnnlab compare`."
)
DiagnosticsConfig = config_class(
    "DiagnosticsConfig",
    DIAGNOSTICS_OPTIONS,
    "The [diagnostics] table: when the gradient flow and the "
    "recurrent health are recorded, and on how many sequences.",
)


@dataclass(frozen=True)
class Experiment:
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


# -- reading ---------------------------------------------------------------------------------
def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable or malformed file is one clear ConfigError."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not an experiment file", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML: {exc}", source=str(path)) from None


def read_with_overrides(path: Path, sets=()) -> tuple[dict[str, Any], dict[str, str]]:
    """An experiment file's tables with ``--set`` overrides applied, and where each overridden
    key came from (``{"train.epochs": "--set train.epochs=5"}``): how every command reads one."""
    raw = read_toml(path)
    return raw, apply_overrides(raw, list(sets))


def load_experiment_file(path: Path, registry, sets=()) -> Experiment:
    """Read, override and validate an experiment file with ``registry``'s plugins."""
    raw, origins = read_with_overrides(path, sets)
    return build_experiment(raw, registry, source=Path(path), origins=origins)


def parse_override(item: str) -> tuple[str, str, Any]:
    """``"train.epochs=5"`` -> ``("train", "epochs", 5)``; the value is read as TOML, and as a
    plain string when it is not valid TOML (so ``train.backend=numba`` needs no quotes)."""
    source = f"--set {item}"
    if "=" not in item:
        raise ConfigError("expected TABLE.KEY=VALUE", source=source)
    dotted, raw = item.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError("expected TABLE.KEY=VALUE, e.g. train.epochs=5", source=source)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts[0], parts[1], value


def apply_overrides(raw: dict[str, Any], sets: list[str]) -> dict[str, str]:
    """Apply ``--set`` overrides in place; return ``{"table.key": "--set ..."}`` for messages."""
    origins = {}
    for item in sets:
        table, key, value = parse_override(item)
        section = raw.setdefault(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{table!r} is not a table", source=f"--set {item}")
        section[key] = value
        origins[f"{table}.{key}"] = f"--set {item}"
    return origins


# -- validation ------------------------------------------------------------------------------
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
}


def check_value(option: Option, value: Any) -> Any:
    """Return the value converted to the option's type, or raise ValueError with the reason."""
    t = option.type
    ok = (
        (t is bool and isinstance(value, bool))
        or (t is int and isinstance(value, int) and not isinstance(value, bool))
        or (t is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (t is str and isinstance(value, str))
        or (t is list and isinstance(value, list))
    )
    if not ok:
        raise ValueError(f"must be {_TYPE_NAMES.get(t, t.__name__)}, got {value!r}")
    if t is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
    if t is list and option.item is not None:
        for item in value:
            if not isinstance(item, option.item):
                raise ValueError(f"must be a list of {_TYPE_NAMES[option.item]}s, got {item!r}")
    if option.choices is not None and value not in option.choices:
        valid = ", ".join(repr(c) for c in option.choices)
        hint = closest(value, option.choices) if isinstance(value, str) else ""
        raise ValueError(f"{value!r} is not valid{hint} (valid: {valid})")
    if option.gt is not None and not value > option.gt:
        raise ValueError(f"must be > {option.gt}, got {value!r}")
    if option.ge is not None and not value >= option.ge:
        raise ValueError(f"must be >= {option.ge}, got {value!r}")
    if option.le is not None and not value <= option.le:
        raise ValueError(f"must be <= {option.le}, got {value!r}")
    if option.lt is not None and not value < option.lt:
        raise ValueError(f"must be < {option.lt}, got {value!r}")
    return value


def validate_table(
    values: Any, options, *, table: str, source: str, origins=None, extra=()
) -> dict[str, Any]:
    """Validate one table against its options; fill in defaults. ``extra`` names keys that are
    allowed and handled by the caller."""
    origins = origins or {}
    if not isinstance(values, dict):
        raise ConfigError("must be a table", source=source, table=table)
    by_name = {o.name: o for o in options}
    out = {}
    for key, value in values.items():
        where = origins.get(f"{table}.{key}", source)
        if key in extra:
            continue
        if key not in by_name:
            valid = sorted([*by_name, *extra])
            raise ConfigError(
                f"unknown key{closest(key, valid)} (valid: {', '.join(valid)})",
                source=where,
                table=table,
                key=key,
            )
        try:
            out[key] = check_value(by_name[key], value)
        except ValueError as exc:
            raise ConfigError(str(exc), source=where, table=table, key=key) from None
    for option in options:
        out.setdefault(option.name, option.default)
    return out


def build_experiment(
    raw: dict[str, Any], registry, *, source: Path | None = None, origins=None
) -> Experiment:
    """Validate the raw tables (after overrides) against the core schema and the task's options."""
    src = str(source) if source else "<experiment>"
    origins = origins or {}
    declared = getattr(registry, "tables", {})  # plugins' tables (rnnlab.plugin.TableSpec)
    valid = (*TABLES, *sorted(declared), SWEEP)
    for table in raw:
        if table == SWEEP:
            raise ConfigError(
                "this file describes a sweep: run it with `rnnlab sweep`, or "
                "remove the table to run the base experiment",
                source=src,
                table=table,
            )
        if table not in TABLES and table not in declared:
            where = next((v for k, v in origins.items() if k.startswith(f"{table}.")), src)
            clash = registry.conflict("table", table) if hasattr(registry, "conflict") else None
            if clash:
                raise ConfigError(clash, source=where, table=table)
            raise ConfigError(
                f"unknown table{closest(table, valid)} (valid: {', '.join(valid)})",
                source=where,
                table=table,
            )
    plugin_tables = {
        name: validate_table(
            raw[name], declared[name].options, table=name, source=src, origins=origins
        )
        for name in declared
        if name in raw
    }
    tables = {
        name: validate_table(raw.get(name, {}), opts, table=name, source=src, origins=origins)
        for name, opts in CORE_TABLES.items()
    }
    check_cell(tables["model"], registry, origins, src, given=raw.get("model", {}))
    if not tables["experiment"]["name"]:
        tables["experiment"]["name"] = source.stem if source else "experiment"

    task_raw = raw.get("task")
    if not isinstance(task_raw, dict) or "name" not in task_raw:
        raise ConfigError(
            f"missing key (valid tasks: {', '.join(sorted(registry.tasks))})",
            source=src,
            table="task",
            key="name",
        )
    task_name = task_raw["name"]
    where = origins.get("task.name", src)
    if not isinstance(task_name, str):
        raise ConfigError(
            f"must be a string, got {task_name!r}", source=where, table="task", key="name"
        )
    try:
        task_spec = registry.task(task_name)
    except PluginError as exc:  # unknown (with the closest name) or claimed by two plugins
        raise ConfigError(str(exc), source=where, table="task", key="name") from None
    task_options = validate_table(
        task_raw, task_spec.options, table="task", source=src, origins=origins, extra=("name",)
    )

    backend = tables["train"]["backend"]
    if backend not in registry.backends:
        where = origins.get("train.backend", src)
        try:
            registry.backend(backend)
        except PluginError as exc:
            raise ConfigError(str(exc), source=where, table="train", key="backend") from None
    return Experiment(
        experiment=ExperimentConfig(**tables["experiment"]),
        task=TaskConfig(task_name, task_options),
        model=ModelConfig(**tables["model"]),
        train=TrainConfig(**tables["train"]),
        source=source,
        compare=CompareConfig(**tables["compare"]),
        diagnostics=DiagnosticsConfig(**tables["diagnostics"]),
        tables=plugin_tables,
    )


def check_cell(
    model: dict[str, Any], registry, origins: dict[str, str], src: str, given=None
) -> None:
    """``model.cell`` names a cell the registry knows, its nonlinearity is one the cell accepts
    (not set in ``given``, the raw table: the cell's default), and a cell option
    (``forget_bias``, ``chrono_tmax``, ``r_min``...) differs from its default only for a
    cell it applies to."""
    from ..cells import CELL_OPTIONS

    name, cells = model["cell"], registry.cells
    if name not in cells:
        valid = ", ".join(repr(c) for c in cells)
        raise ConfigError(
            f"{name!r} is not valid{closest(name, cells)} (valid: {valid})",
            source=origins.get("model.cell", src),
            table="model",
            key="cell",
        )
    spec = cells[name]
    if given is not None and "nonlinearity" not in given:
        model["nonlinearity"] = spec.nonlinearities[0]
    if model["nonlinearity"] not in spec.nonlinearities:
        valid = ", ".join(map(repr, spec.nonlinearities))
        raise ConfigError(
            f"cell {name!r} accepts {valid}, not {model['nonlinearity']!r} (default: "
            f"{spec.nonlinearities[0]!r})",
            source=origins.get("model.nonlinearity", origins.get("model.cell", src)),
            table="model",
            key="nonlinearity",
        )
    for key, default in CELL_OPTIONS.items():
        if model.get(key, default) == default or key in spec.applicable_options:
            continue
        takers = [c for c, s in cells.items() if key in s.applicable_options]
        where = origins.get(f"model.{key}", origins.get("model.cell", src))
        raise ConfigError(
            f"applies to cell {' or '.join(map(repr, takers))} only, but cell is "
            f'{name!r} (set {key} = {default!r} or cell = "{takers[0]}")',
            source=where,
            table="model",
            key=key,
        )
    if model.get("chrono_tmax", 0) and model["chrono_tmax"] <= 2:
        raise ConfigError(
            f"must be 0 (off) or more than 2 (log U(1, T-1)), got {model['chrono_tmax']}",
            source=origins.get("model.chrono_tmax", src),
            table="model",
            key="chrono_tmax",
        )
    if model.get("forget_bias", 0) and model.get("chrono_tmax", 0):
        raise ConfigError(
            "forget_bias and chrono_tmax both set the forget gate's bias; set one of them",
            source=origins.get("model.chrono_tmax", src),
            table="model",
            key="chrono_tmax",
        )
    if model.get("r_min", 0.0) >= model.get("r_max", 1.0):
        raise ConfigError(
            f"r_min ({model['r_min']}) must be below r_max ({model['r_max']})",
            source=origins.get("model.r_min", src),
            table="model",
            key="r_min",
        )


def plugin_files(raw: dict[str, Any], source: Path | None) -> list[Path]:
    """The plugin files an experiment file names, resolved relative to that file."""
    section = raw.get("experiment", {})
    files = section.get("plugins", []) if isinstance(section, dict) else []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(
            "must be a list of file paths",
            source=str(source or "<experiment>"),
            table="experiment",
            key="plugins",
        )
    base = source.parent if source else Path.cwd()
    return [(base / f) for f in files]
