"""The results matrix of one or more sweep directories: task x swept task option x cell ->
solve rate over seeds with its Wilson interval, the median of the task's main metric, the wall
and CPU time per run, the machine's load when the runs ended and the backend.

In each sweep, the *swept task option* is every ``task.*`` key whose value differs between the
sweep's variants (``task.length``, or ``task.length`` and ``task.train_size`` together, or
``task.permute``), and the *cell* is ``model.cell`` followed by the variant's other
overrides that are not task options (``lstm forget_bias=1.0``, ``lstm chrono_tmax=70``).
A task option that one sweep varies is named on the rows of every sweep whose task has it, so
a sweep at one length read beside a sweep over lengths says ``length=400``. The "solved" rule
is the command line's, else the sweep's ``[stats]`` table's, else the one the task declares
(``Task.solved``); the main metric is ``--metric`` when given, else the rule's metric, else
the ``[stats]`` metric.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RnnlabError
from .collect import SEARCH_JSON, SWEEP_JSON, Collected, collect_sweep
from .settings import StatsSettings, parse_stats_table, split_metric
from .stats import solve_rate
from .summary import with_task_rule

TASK = "task."
VERSIONED = ("python", "rnnlab", "numpy", "numba", "scipy")  # the runs' versions the header names


def matrix(directories: list[Path], *, metric: str | None = None, solved: str | None = None):
    """The rows of the matrix (JSON-able dicts), sorted by task and swept option, then sweep by
    sweep in the order given, each in the order it lists its variants."""
    records = [(Path(d), sweep_record(Path(d))) for d in directories]
    # a task option one sweep varies is shown on every row of that task (a sweep at one
    # length beside a sweep over lengths: its rows say length=400, not "—")
    shown: list[str] = []
    for _, record in records:
        shown.extend(k for k in swept_task_keys(overrides_of(record)) if k not in shown)
    rows = []
    for directory, record in records:
        rows.extend(sweep_rows(directory, record, shown, metric=metric, solved=solved))
    rows.sort(key=lambda r: (r["task"], r["swept_key"]))  # stable: sweep, then variant order
    for row in rows:
        del row["order"], row["swept_key"]
    return rows


def sweep_record(directory: Path) -> dict:
    """The directory's sweep.json (a search directory or any other folder refused)."""
    if not (directory / SWEEP_JSON).is_file():
        what = "a search directory" if (directory / SEARCH_JSON).is_file() else "not a sweep"
        raise RnnlabError(
            f"{directory}: {what}; the matrix reads sweep directories (with {SWEEP_JSON})"
        )
    try:
        return json.loads((directory / SWEEP_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RnnlabError(f"{directory / SWEEP_JSON}: unreadable ({exc})") from None


def overrides_of(record: dict) -> dict[str, dict[str, Any]]:
    return {v["id"]: v.get("overrides", {}) for v in record.get("variants", [])}


def sweep_rows(
    directory: Path, record: dict, shown: list[str], *, metric: str | None, solved: str | None
) -> list[dict]:
    collected = collect_sweep(directory)
    settings, solved_from = matrix_settings(collected, metric=metric, solved=solved)
    threshold = settings.threshold
    main = metric or (f"{threshold.split}.{threshold.metric}" if threshold else settings.metric)
    split, name = split_metric(main)
    overrides = overrides_of(record)
    swept = [*swept_task_keys(overrides), *shown]
    swept = [k for i, k in enumerate(swept) if k not in swept[:i]]
    rows = []
    for order, (variant, runs) in enumerate(collected.runs.items()):
        config = collected.configs.get(variant, {})
        summaries = [runs[seed] for seed in sorted(runs)]
        row = {
            "directory": str(directory),
            "variant": variant,
            "order": order,
            "task": config.get("task", {}).get("name", "?"),
            "swept": setting(config, swept),
            "swept_key": sort_key(config, swept),
            "cell": cell_name(config, overrides.get(variant, {})),
            "seeds": sorted(runs),
            "metric": main,
            "median": median([s["metrics"].get(split, {}).get(name) for s in summaries]),
            "wall_seconds": mean([s.get("wall_seconds") for s in summaries]),
            "cpu_seconds": mean([s.get("cpu_seconds") for s in summaries]),
            "load": median([load_1min(s) for s in summaries]),
            "backend": ", ".join(sorted({str(s.get("backend", "?")) for s in summaries})),
            "solved": str(threshold) if threshold else None,
            "solved_from": solved_from,
            "solve_rate": None,
            "versions": versions([s.get("versions", {}) for s in summaries]),
            "blas": sorted({blas(s) for s in summaries} - {None}),
        }
        if threshold is not None:
            values = [
                s["metrics"][threshold.split][threshold.metric]
                for s in summaries
                if threshold.metric in s.get("metrics", {}).get(threshold.split, {})
            ]
            row["solve_rate"] = solve_rate(values, threshold)
        rows.append(row)
    # within a task and setting, the cells in the order the sweep lists its variants (a cell
    # whose options follow the setting, lstm chrono_tmax=T, keeps its place at every T)
    rows.sort(key=lambda r: (r["task"], r["swept_key"], r["order"]))
    return rows


def matrix_settings(
    collected: Collected, *, metric: str | None, solved: str | None
) -> tuple[StatsSettings, str]:
    """The sweep's [stats] settings with the command line's on top, and the task's declared
    rule when neither gives ``solved``; and where the rule came from."""
    try:
        settings = parse_stats_table(collected.stats, str(collected.directory))
        changes = {k: v for k, v in (("metric", metric), ("solved", solved)) if v is not None}
        settings = replace(settings, **changes)
        parse_stats_table(settings.to_dict(), "the command line")
    except ConfigError as exc:
        raise RnnlabError(str(exc)) from None
    settings, solved_from = with_task_rule(collected, settings)
    if solved is not None:
        solved_from = "command line"
    elif solved_from == "settings":
        solved_from = "[stats]"
    return settings, solved_from


def swept_task_keys(overrides: dict[str, dict[str, Any]]) -> list[str]:
    """The ``task.*`` keys whose value differs between variants (a key a variant does not set
    counts as a value of its own), in the order the variants name them."""
    keys: list[str] = []
    for over in overrides.values():
        keys.extend(k for k in over if k.startswith(TASK) and k not in keys)
    marker = object()
    return [
        k
        for k in keys
        if len({json.dumps(o.get(k, marker), default=str) for o in overrides.values()}) > 1
    ]


def setting(config: dict, keys: list[str]) -> str:
    """``length=50`` (or ``length=200 train_size=10000``): the variant's swept task options."""
    task = config.get("task", {})
    named = [k[len(TASK) :] for k in keys]
    return " ".join(f"{k}={word(task[k])}" for k in named if k in task) or "—"


def sort_key(config: dict, keys: list[str]) -> tuple:
    task = config.get("task", {})
    out = []
    for k in keys:
        if k[len(TASK) :] not in task:
            continue
        value = task[k[len(TASK) :]]
        number = isinstance(value, int | float)
        out.append((0, float(value), "") if number else (1, 0.0, word(value)))
    return tuple(out)


def cell_name(config: dict, overrides: dict[str, Any]) -> str:
    """``model.cell``, then the variant's other overrides that are not task options."""
    cell = str(config.get("model", {}).get("cell", "?"))
    others = [k for k in overrides if not k.startswith(TASK) and k != "model.cell"]
    short = {k: k.split(".", 1)[1] for k in others}
    if len(set(short.values())) < len(others):  # the same key in two tables: say which
        short = {k: k for k in others}
    return " ".join([cell, *(f"{short[k]}={word(overrides[k])}" for k in others)])


def word(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def versions(recorded: list[dict]) -> dict[str, str]:
    """The versions of :data:`VERSIONED` the runs recorded (several: joined by ", ")."""
    out = {}
    for name in VERSIONED:
        seen = sorted({str(v[name]) for v in recorded if isinstance(v, dict) and name in v})
        if seen:
            out[name] = ", ".join(seen)
    return out


def blas(summary: dict) -> str | None:
    """``openblas 0.3.31, 1 thread``: the BLAS and its threads as the run recorded them."""
    record = summary.get("blas")
    if not isinstance(record, dict) or "library" not in record:
        return None
    threads = record.get("threads")
    libraries = ", ".join(sorted(set(str(record["library"]).split(", "))))  # any order
    return f"{libraries}, {threads} thread{'s' if threads != 1 else ''}"


def load_1min(summary: dict) -> float | None:
    """The machine's 1-minute load average when the run ended (runs record it since
    summary.json has ``load_average``)."""
    load = summary.get("load_average")
    return load[0] if isinstance(load, list) and load else None


def median(values) -> float | None:
    known = [float(v) for v in values if isinstance(v, int | float)]
    return statistics.median(known) if known else None


def mean(values) -> float | None:
    known = [float(v) for v in values if isinstance(v, int | float)]
    return statistics.fmean(known) if known else None
