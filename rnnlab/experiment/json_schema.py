"""A JSON Schema (draft 2020-12) of the experiment file, generated from the declarations the
validator checks: the core tables (:mod:`rnnlab.experiment.schema`), the tables installed plugins
declare, each task's options (chosen by ``task.name``) and the ``[sweep]``, ``[search]`` and
``[stats]`` tables. Editors that read JSON Schema for TOML (Taplo, Even Better TOML) complete
keys, show each key's meaning and flag unknown keys and values out of range; ``rnnlab schema``
prints it.

What the schema cannot say is left to the validator: non-finite numbers, checks across keys
(``forget_bias`` only for a gated cell, the nonlinearities each cell accepts), a task's own
checks of its options and the nesting limit. Task names, cells, backends and nonlinearities
are those of the plugins given to it.
"""

from __future__ import annotations

from typing import Any

from ..specs import Option
from .schema import (
    CORE_CLASSES,
    CORE_TABLES,
    DIRECTIONS,
    PRUNERS,
    SAMPLERS,
    SEARCH,
    STATS,
    SWEEP,
    SWEEP_KEYS,
    TABLES,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array"}


def option_schema(option: Option) -> dict[str, Any]:
    """One key: its type, default, accepted values, bounds and meaning."""
    out: dict[str, Any] = value_schema(option)
    if option.help:
        out["description"] = option.help
    if _plain(option.default):
        out["default"] = option.default
    return out


def value_schema(option: Option) -> dict[str, Any]:
    """The values ``option`` accepts, without its description and default."""
    out: dict[str, Any] = {}
    if option.type in _TYPES:
        out["type"] = _TYPES[option.type]
    if option.type is list and option.item in _TYPES:
        out["items"] = {"type": _TYPES[option.item]}
    if option.choices is not None:
        out["enum"] = list(option.choices)
    bounds = {
        "minimum": option.ge,
        "exclusiveMinimum": option.gt,
        "maximum": option.le,
        "exclusiveMaximum": option.lt,
        "maxLength": option.max_length,
    }
    out.update({k: v for k, v in bounds.items() if v is not None})
    return out


def _plain(value: Any) -> bool:
    """True for a default JSON can hold."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, str | int | float | bool)


def table_schema(options, description: str = "", *, extra: dict | None = None) -> dict:
    """A table of options; any other key is refused."""
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["properties"] = {**(extra or {}), **{o.name: option_schema(o) for o in options}}
    out["additionalProperties"] = False
    return out


def task_schema(tasks: dict) -> dict[str, Any]:
    """``[task]``: ``name`` picks the task, whose options are then the only other keys."""
    names = sorted(tasks)
    name = {"type": "string", "description": "the task to train on"}
    if names:
        name["enum"] = names
    branches = []
    for task_name in names:
        spec = tasks[task_name]
        then = table_schema(spec.options, spec.description, extra={"name": {"const": task_name}})
        branches.append(
            {
                "if": {"properties": {"name": {"const": task_name}}, "required": ["name"]},
                "then": then,
            }
        )
    out: dict[str, Any] = {
        "type": "object",
        "description": "the task and its options (which options exist depends on name)",
        "properties": {"name": name},
        "required": ["name"],
    }
    if branches:
        out["allOf"] = branches
    return out


def sweep_schema(core: dict[str, tuple[Option, ...]]) -> dict[str, Any]:
    """``[sweep]``: the seeds, explicit variants, and grid axes ``"TABLE.KEY" = [values]`` (or
    ``[sweep.TABLE]`` with ``KEY = [values]``) over every table but [experiment]; the keys and
    values of the core tables are checked, a task's keys are left to the validator."""
    varying = [t for t in TABLES if t != "experiment"]
    axes: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    one: dict[str, Any] = {}
    for table in varying:
        options = core.get(table, ())
        for o in options:
            values = {"type": "array", "minItems": 1, "items": value_schema(o)}
            axes[f"{table}.{o.name}"] = {**values, "description": f"values to try: {o.help}"}
            one[f"{table}.{o.name}"] = value_schema(o)
        per_key = {
            o.name: {"type": "array", "minItems": 1, "items": value_schema(o)} for o in options
        }
        nested[table] = {"type": "object", "properties": per_key}
        if options:
            nested[table]["additionalProperties"] = False
    pattern = r"^task\.[^.]+$"  # a task's options depend on the task: any key
    seeds, variants = SWEEP_KEYS
    return {
        "type": "object",
        "description": "run the experiment once per variant and seed (`rnnlab sweep`)",
        "properties": {
            seeds: {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "integer", "minimum": 0},
                "description": "the seeds every variant runs with",
            },
            variants: {
                "type": "array",
                "description": "explicit sets of overrides, each one variant",
                "items": {
                    "type": "object",
                    "properties": {**one, **{t: {"type": "object"} for t in varying}},
                    "patternProperties": {pattern: {}},
                    "additionalProperties": False,
                },
            },
            **nested,
            **axes,
        },
        "patternProperties": {pattern: {"type": "array", "minItems": 1}},
        "additionalProperties": False,
    }


METRIC = {"type": "string", "pattern": r"^(train|val|test)\.[^.]+$"}


def search_schema() -> dict[str, Any]:
    """The [search] table `rnnlab search` reads (its ranges are checked by the search)."""
    pattern = r"^[a-z_]+\.[^.]+$"  # TABLE.KEY
    dimension = {
        "description": "{ int = [LOW, HIGH] }, { float = [LOW, HIGH] } (log, step), "
        "{ choice = [...] } or a list of values",
        "anyOf": [{"type": "object"}, {"type": "array", "minItems": 1}],
    }
    return {
        "type": "object",
        "description": "an Optuna search over the experiment's keys (`rnnlab search`)",
        "properties": {
            "trials": {"type": "integer", "minimum": 1, "description": "trials to end with"},
            "metric": {**METRIC, "description": "SPLIT.METRIC a trial is scored on"},
            "direction": {"enum": list(DIRECTIONS)},
            "sampler": {"enum": list(SAMPLERS)},
            "pruner": {"enum": list(PRUNERS)},
            "seeds": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "integer", "minimum": 0},
                "description": "every trial runs each; its value is the mean",
            },
            "seed": {"type": "integer", "minimum": 0, "description": "the sampler's seed"},
            "storage": {"type": "string", "description": "an Optuna RDB URL"},
            "space": {
                "type": "object",
                "description": "TABLE.KEY = a range or choice to search",
                "patternProperties": {pattern: dimension},
                "additionalProperties": {"type": "object"},
            },
        },
        "additionalProperties": False,
    }


def stats_schema() -> dict[str, Any]:
    """The [stats] table `rnnlab stats` reads."""
    return {
        "type": "object",
        "description": "what `rnnlab stats` reports on (a single run ignores it)",
        "properties": {
            "metric": {**METRIC, "description": "SPLIT.METRIC the statistics are about"},
            "direction": {"enum": list(DIRECTIONS)},
            "solved": {
                "type": "string",
                "pattern": r"^\s*\w+\.\w+\s*(<=|>=|<|>)\s*\S+\s*$",
                "description": 'what counts as solved, e.g. "test.mse < 0.01"',
            },
        },
        "additionalProperties": False,
    }


def names(table: dict[str, Any], key: str, valid: list[str]) -> None:
    """The key names one of the installed cells, backends or nonlinearities (the validator asks
    the registry)."""
    if valid:
        table["properties"][key]["enum"] = valid


def described(table: str) -> str:
    """A core table's meaning, from its class's docstring: "The [model] table: cell, sizes, ..."
    -> "cell, sizes, ..."."""
    doc = " ".join((CORE_CLASSES[table].__doc__ or "").split())
    return doc.split(":", 1)[1].strip().rstrip(".") if ":" in doc else doc


def experiment_schema(registry) -> dict[str, Any]:
    """The JSON Schema of an experiment file with ``registry``'s plugins installed."""
    tables = {"task": task_schema(registry.tasks)}
    tables |= {name: table_schema(CORE_TABLES[name], described(name)) for name in CORE_TABLES}
    tables = {name: tables[name] for name in TABLES}  # in the order files are written
    names(tables["model"], "cell", list(registry.cells))
    accepted = [n for spec in registry.cells.values() for n in spec.nonlinearities]
    names(tables["model"], "nonlinearity", list(dict.fromkeys(accepted)))  # which: per cell
    names(tables["train"], "backend", sorted(registry.backends))
    for name in sorted(registry.tables):
        spec = registry.tables[name]
        tables[name] = table_schema(spec.options, spec.description)
    tables[SWEEP] = sweep_schema(CORE_TABLES)
    tables[SEARCH] = search_schema()
    tables[STATS] = stats_schema()
    return {
        "$schema": DRAFT,
        "title": "rnnlab experiment file",
        "description": "an rnnlab experiment (`rnnlab run FILE`), sweep (`rnnlab sweep FILE`) "
        "or search (`rnnlab search FILE`)",
        "type": "object",
        "properties": tables,
        "required": ["task"],
        "additionalProperties": False,
    }
