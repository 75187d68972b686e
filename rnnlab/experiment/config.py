"""Experiment files: TOML -> a typed, validated :class:`Experiment`, with ``--set`` overrides.

The tables, their keys and the values each accepts are declared in
:mod:`rnnlab.experiment.schema`; this module reads files and checks them against it. Every error
names the file (or the ``--set`` that caused it), the table and the key, and for unknown names
the closest valid one; values are quoted shortened (:func:`rnnlab.errors.shown`). Arrays and
tables may nest at most :data:`MAX_DEPTH` levels deep.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import SHOWN, ConfigError, PluginError, closest, shown
from ..specs import Option
from .schema import (
    COMPARE_OPTIONS,
    CORE_TABLES,
    DIAGNOSTICS_OPTIONS,
    EXPERIMENT_OPTIONS,
    MODEL_OPTIONS,
    OPTIMIZERS,
    SEARCH,
    STATS,
    STUDY_TABLES,
    SWEEP,
    TABLES,
    TRAIN_OPTIONS,
    CompareConfig,
    DiagnosticsConfig,
    Experiment,
    ExperimentConfig,
    ModelConfig,
    TaskConfig,
    TrainConfig,
)

__all__ = [  # the schema's names, for readers that validate and read the declarations at once
    "COMPARE_OPTIONS",
    "CORE_TABLES",
    "DIAGNOSTICS_OPTIONS",
    "EXPERIMENT_OPTIONS",
    "MODEL_OPTIONS",
    "OPTIMIZERS",
    "SEARCH",
    "STATS",
    "STUDY_TABLES",
    "SWEEP",
    "TABLES",
    "TRAIN_OPTIONS",
    "CompareConfig",
    "DiagnosticsConfig",
    "Experiment",
    "ExperimentConfig",
    "ModelConfig",
    "TaskConfig",
    "TrainConfig",
    "apply_overrides",
    "build_experiment",
    "check_nesting",
    "load_experiment_file",
    "parse_override",
    "plugin_files",
    "read_toml",
    "read_with_overrides",
    "validate_table",
]

MAX_DEPTH = 64  # arrays and tables nested in each other, counted from the file's top level
NESTING = f"arrays and tables may nest at most {MAX_DEPTH} levels deep"


# -- reading ---------------------------------------------------------------------------------
def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable, malformed or too deeply nested file is one clear
    ConfigError."""
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
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML: {exc}", source=str(path)) from None
    except RecursionError:  # the parser recurses once per level: name where, not the stack
        raise too_deep_text(text, str(path)) from None
    check_nesting(raw, source=str(path))
    return raw


def check_nesting(value: Any, *, source: str, path: tuple[str, ...] = ()) -> None:
    """Raise a ConfigError naming the table and key when ``value`` (at ``path`` in the
    experiment) holds arrays or tables nested more than :data:`MAX_DEPTH` levels deep (or a dict
    or list that contains itself), before anything recurses into it."""
    if not isinstance(value, dict | list | tuple):
        return
    stack = [(value, len(path), path)]
    while stack:
        item, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"nested too deeply: {NESTING}",
                source=source,
                table=where[0] if where else "",
                key=".".join(where[1:2]),
            )
        nested = (dict, list, tuple)
        if isinstance(item, dict):
            stack += [
                (v, depth + 1, (*where, str(k))) for k, v in item.items() if isinstance(v, nested)
            ]
        else:
            stack += [(v, depth + 1, where) for v in item if isinstance(v, nested)]


_TOKENS = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:\\.|[^"\\\n])*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}\n=]'
)
_KEY = re.compile(r"\s*([^=\[\]{}#\n]+?)\s*=")
_HEADER = re.compile(r"\s*\[\[?\s*([^\]\n]+?)\s*\]")


def too_deep_text(text: str, source: str) -> ConfigError:
    """The error for TOML ``text`` whose arrays or inline tables nest too deeply for the parser:
    it names the line, and the table and key the value belongs to when they can be read."""
    depth, line, line_start, table, key, start = 0, 1, 0, "", "", 0
    for token in _TOKENS.finditer(text):
        t = token.group()
        if t == "\n" or t.startswith('"""') or t.startswith("'''"):
            line += t.count("\n")
            line_start = token.end() if "\n" in t else line_start
        elif t == "=" and depth == 0:
            found = _KEY.match(text, line_start)
            key = found.group(1) if found else ""
        elif t in "[{" and depth == 0 and not text[line_start : token.start()].strip():
            found = _HEADER.match(text, line_start)  # a [table] header, not a value
            table, key = (found.group(1), "") if found else (table, key)
        elif t in "[{":
            depth, start = depth + 1, start if depth else line
            if depth > MAX_DEPTH:
                return ConfigError(
                    f"nested too deeply (from line {start}): {NESTING}",
                    source=source,
                    table=table,
                    key=key,
                )
        elif t in "]}":
            depth = max(depth - 1, 0)
    return ConfigError(f"nested too deeply: {NESTING}", source=source)


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
    source = set_source(item)
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
    except RecursionError:
        raise ConfigError(
            f"nested too deeply: {NESTING}", source=source, table=parts[0], key=parts[1]
        ) from None
    check_nesting(value, source=source, path=(parts[0], parts[1]))
    return parts[0], parts[1], value


def set_source(item: str) -> str:
    """``"--set train.epochs=5"``: what a message blames, shortened for a huge value."""
    if len(item) <= 2 * SHOWN:
        return f"--set {item}"
    return f"--set {item[:SHOWN]}... ({len(item)} characters)"


def apply_overrides(raw: dict[str, Any], sets: list[str]) -> dict[str, str]:
    """Apply ``--set`` overrides in place; return ``{"table.key": "--set ..."}`` for messages."""
    origins = {}
    for item in sets:
        table, key, value = parse_override(item)
        section = raw.setdefault(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{shown(table)} is not a table", source=set_source(item))
        section[key] = value
        origins[f"{table}.{key}"] = set_source(item)
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
        raise ValueError(f"must be {_TYPE_NAMES.get(t, t.__name__)}, got {shown(value)}")
    if t is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {shown(value)}")
    if t is list and option.item is not None:
        for item in value:
            if not isinstance(item, option.item):
                raise ValueError(
                    f"must be a list of {_TYPE_NAMES[option.item]}s, got {shown(item)}"
                )
    if option.choices is not None and value not in option.choices:
        valid = ", ".join(repr(c) for c in option.choices)
        hint = closest(value, option.choices) if isinstance(value, str) else ""
        raise ValueError(f"{shown(value)} is not valid{hint} (valid: {valid})")
    if option.max_length is not None and len(value) > option.max_length:
        raise ValueError(f"must be at most {option.max_length} characters, got {shown(value)}")
    if option.gt is not None and not value > option.gt:
        raise ValueError(f"must be > {option.gt}, got {shown(value)}")
    if option.ge is not None and not value >= option.ge:
        raise ValueError(f"must be >= {option.ge}, got {shown(value)}")
    if option.le is not None and not value <= option.le:
        raise ValueError(f"must be <= {option.le}, got {shown(value)}")
    if option.lt is not None and not value < option.lt:
        raise ValueError(f"must be < {option.lt}, got {shown(value)}")
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
    valid = (*TABLES, *sorted(declared), *STUDY_TABLES)
    for table in raw:
        if table in (SWEEP, SEARCH):
            raise ConfigError(
                f"this file describes a {table}: run it with `rnnlab {table}`, or "
                "remove the table to run the base experiment",
                source=src,
                table=table,
            )
        if table == STATS:  # checked here, so that a mistake shows before any run
            from ..analysis.settings import parse_stats_table

            parse_stats_table(raw[table], src)
            continue
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
            f"must be a string, got {shown(task_name)}", source=where, table="task", key="name"
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
            f"{shown(name)} is not valid{closest(name, cells)} (valid: {valid})",
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
            f"cell {name!r} accepts {valid}, not {shown(model['nonlinearity'])} (default: "
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
