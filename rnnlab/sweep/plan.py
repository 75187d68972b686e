"""The ``[sweep]`` table: which variants of the experiment to run, and with which seeds.

    [sweep]
    seeds = [0, 1, 2]                          # default: [experiment.seed]
    "model.hidden_size" = [16, 32]             # a grid axis: TABLE.KEY = [values]
    "train.learning_rate" = [0.01, 0.003]
    [[sweep.variants]]                         # optional: explicit sets of overrides
    "train.optimizer" = "sgd"
    [[sweep.variants]]
    "train.optimizer" = "adam"

The variants are every explicit variant (or the base experiment when there are none) crossed
with every point of the grid; the first axis written varies slowest. Each variant is the
experiment file with its overrides applied to the raw tables, validated by
:func:`rnnlab.experiment.config.build_experiment` like any experiment, before anything starts.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.settings import STATS, parse_stats_table
from ..errors import ConfigError, PluginError, closest
from ..executors.base import RunJob
from ..experiment.config import SWEEP, TABLES, build_experiment
from ..training.session import load_backend

RESERVED = ("seeds", "variants")
MAX_RUNS = 10_000  # variants x seeds a sweep may hold: each is a run directory and a validation
FIXED = {  # experiment.* keys hold for the whole sweep
    "seed": "the seeds are listed in [sweep] seeds = [...]",
    "name": "it names the sweep, which has one name",
    "plugins": "plugin files are loaded once for the whole sweep",
}


@dataclass(frozen=True)
class Variant:
    """One configuration of the sweep, run once per seed."""

    index: int
    id: str  # "v03"
    label: str  # "hidden_size=16 learning_rate=0.01", or "base"
    overrides: dict[str, Any]  # "table.key" -> value
    raw: dict[str, Any]  # the experiment's raw tables with the overrides applied
    config: dict[str, Any]  # resolved tables (defaults explicit), seed left out


@dataclass(frozen=True)
class PlannedRun:
    run: str  # run directory name
    variant: int
    seed: int


@dataclass(frozen=True)
class SweepPlan:
    name: str
    source: Path
    grid: dict[str, list]
    variants: list[Variant]
    seeds: list[int]
    plugin_files: tuple[str, ...] = ()
    fingerprint: str = field(default="")
    stats: dict[str, Any] | None = None  # the [stats] table, checked, for `rnnlab stats`

    @property
    def runs(self) -> list[PlannedRun]:
        return [
            PlannedRun(run_name(v, seed), v.index, seed)
            for v in self.variants
            for seed in self.seeds
        ]

    def jobs(self, sweep_dir: Path) -> list[RunJob]:
        out = []
        for run in self.runs:
            raw = copy.deepcopy(self.variants[run.variant].raw)
            raw.setdefault("experiment", {})["seed"] = run.seed
            out.append(
                RunJob(
                    run.run,
                    run.variant,
                    run.seed,
                    raw,
                    str(self.source),
                    self.plugin_files,
                    str(sweep_dir),
                )
            )
        return out


def run_name(variant: Variant, seed: int) -> str:
    """``v03_hidden_size-16_seed-2``: the id keeps names unique, the rest makes them readable."""
    words = re.sub(r"[^A-Za-z0-9_.-]+", "-", variant.label.replace(" ", "_").replace("=", "-"))
    return f"{variant.id}_{words.strip('-_')[:60]}_seed-{seed}"


# -- parsing the table -----------------------------------------------------------------------
def _check_key(dotted: str, *, src: str, where: str) -> None:
    parts = dotted.split(".")
    if len(parts) != 2 or not all(parts) or parts[0] not in TABLES:
        raise ConfigError(
            f"{dotted!r} is not TABLE.KEY with TABLE one of "
            f"{', '.join(t for t in TABLES if t != 'experiment')}",
            source=src,
            table=where,
        )
    table, key = parts
    if table == "experiment":
        reason = FIXED.get(key, "experiment keys cannot vary")
        raise ConfigError(f"{dotted!r} cannot vary: {reason}", source=src, table=where)


def _flatten(values: dict, *, src: str, where: str, skip=()) -> dict[str, Any]:
    """``{"model": {"hidden_size": v}}`` (unquoted dotted keys) or ``{"model.hidden_size": v}``
    -> ``{"model.hidden_size": v}``; each key checked."""
    out = {}
    for key, value in values.items():
        if key in skip:
            continue
        if "." not in key and key in TABLES and isinstance(value, dict):
            pairs = [(f"{key}.{k}", v) for k, v in value.items()]
        elif "." in key:
            pairs = [(key, value)]
        else:
            valid = [*skip, "TABLE.KEY"]
            raise ConfigError(
                f"unknown key {key!r}{closest(key, skip)} (valid: "
                f'{", ".join(valid)}, e.g. "model.hidden_size" = [16, 32])',
                source=src,
                table=where,
            )
        for dotted, v in pairs:
            _check_key(dotted, src=src, where=where)
            out[dotted] = v
    return out


def parse_sweep_table(table: Any, src: str) -> tuple[dict[str, list], list[dict], list | None]:
    """``(grid, variants, seeds)`` from the raw [sweep] table, checked for shape."""
    if not isinstance(table, dict):
        raise ConfigError("must be a table", source=src, table=SWEEP)
    grid = _flatten(table, src=src, where=SWEEP, skip=RESERVED)
    for dotted, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{dotted!r} must be a non-empty list of values to try, got {values!r}",
                source=src,
                table=SWEEP,
            )
        repeated = first_repeat(values)
        if repeated is not None:
            raise ConfigError(f"{dotted!r} lists {repeated!r} twice", source=src, table=SWEEP)
    raw_variants = table.get("variants", [])
    if not isinstance(raw_variants, list) or not all(isinstance(v, dict) for v in raw_variants):
        raise ConfigError(
            "must be a list of tables of overrides ([[sweep.variants]])",
            source=src,
            table=SWEEP,
            key="variants",
        )
    variants = []
    for i, v in enumerate(raw_variants):
        flat = _flatten(v, src=src, where=f"{SWEEP}.variants")
        both = sorted(set(flat) & set(grid))
        if both:
            raise ConfigError(
                f"variant {i + 1} sets {both[0]!r}, which is also a grid axis",
                source=src,
                table=f"{SWEEP}.variants",
            )
        variants.append(flat)
    seeds = table.get("seeds")
    if seeds is not None:
        ok = (
            isinstance(seeds, list)
            and seeds
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        )
        if not ok:
            raise ConfigError(
                f"must be a non-empty list of integers >= 0, got {seeds!r}",
                source=src,
                table=SWEEP,
                key="seeds",
            )
        if len(set(seeds)) != len(seeds):
            raise ConfigError(
                f"lists a seed twice: {seeds!r}", source=src, table=SWEEP, key="seeds"
            )
    return grid, variants, seeds


def first_repeat(values: list) -> Any:
    """The first value of ``values`` equal to an earlier one (as ``==`` compares: 1 and 1.0
    are equal), or None; linear in the number of values (each value keyed by its JSON text,
    numbers by their value)."""
    seen = set()
    for value in values:
        key = _key(value)
        if key in seen:
            return value
        seen.add(key)
    return None


def _key(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value, sort_keys=True, default=repr)
    if value != value:  # NaN equals nothing, itself included: never a repeat
        return f"nan-{id(value)}"
    return json.dumps(float(value) if float(value) == value else value)


def check_size(grid: dict[str, list], explicit: list, seeds: list | None, src: str) -> None:
    """Refuse, before anything is built, a sweep with more than MAX_RUNS runs."""
    total = max(1, len(explicit)) * max(1, len(seeds or [0]))
    for values in grid.values():
        total *= len(values)
    if total > MAX_RUNS:
        sizes = " x ".join(
            [*(f"{len(v)} ({k})" for k, v in grid.items())]
            + ([f"{len(explicit)} variants"] if explicit else [])
            + ([f"{len(seeds)} seeds"] if seeds else [])
        )
        raise ConfigError(
            f"{sizes} = {total:,} runs, more than the {MAX_RUNS:,} a sweep may hold; "
            f"split it into several sweeps, or use fewer values",
            source=src,
            table=SWEEP,
        )


# -- building the plan -----------------------------------------------------------------------
def _label(overrides: dict[str, Any], all_keys: set[str]) -> str:
    if not overrides:
        return "base"
    short = {}
    for dotted in overrides:
        key = dotted.split(".")[1]
        same = [k for k in all_keys if k.split(".")[1] == key]
        short[dotted] = key if len(same) == 1 else dotted
    text = {True: "true", False: "false"}
    return " ".join(
        f"{short[k]}={text.get(v, v) if isinstance(v, bool) else v}" for k, v in overrides.items()
    )


def _apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    for dotted, value in overrides.items():
        table, key = dotted.split(".")
        section = raw.setdefault(table, {})
        if isinstance(section, dict):
            section[key] = copy.deepcopy(value)
    return raw


def _validate(
    raw, registry, source: Path, *, overrides: dict, label: str, blame, origins=None
) -> dict[str, Any]:
    """Resolve one variant; an error caused by one of its overrides is blamed on [sweep], one
    caused by a ``--set`` on that ``--set`` (``origins``)."""
    try:
        exp = build_experiment(copy.deepcopy(raw), registry, source=source, origins=origins)
        load_backend(exp, registry)  # available here, and supports the cell and dtype
    except (ConfigError, PluginError) as exc:
        dotted = f"{getattr(exc, 'table', '')}.{getattr(exc, 'key', '')}"
        if dotted in overrides:
            raise blame(dotted, overrides[dotted], getattr(exc, "detail", str(exc))) from None
        if isinstance(exc, ConfigError) and overrides:  # e.g. a check across two keys
            raise ConfigError(
                f"{exc.detail} (in the variant with {label})",
                source=exc.source,
                table=exc.table,
                key=exc.key,
            ) from None
        raise
    tables = exp.to_dict()
    tables["experiment"].pop("seed")
    return tables


def build_plan(
    raw: dict[str, Any], registry, *, source: Path, plugin_files=(), origins=None
) -> SweepPlan:
    """Every variant of the sweep in ``raw``, validated, with its runs. ``origins`` says which
    keys a ``--set`` changed (``{"model.cell": "--set model.cell=gru"}``), for messages."""
    src = str(source)
    if SWEEP not in raw:
        raise ConfigError(
            "no [sweep] table: nothing to sweep (run one experiment with `rnnlab run`)", source=src
        )
    base = {k: v for k, v in raw.items() if k not in (SWEEP, STATS)}
    stats = parse_stats_table(raw.get(STATS), src).to_dict()
    grid, explicit, seeds = parse_sweep_table(raw[SWEEP], src)
    check_size(grid, explicit, seeds, src)
    all_keys = set(grid) | {k for v in explicit for k in v}
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    width = max(2, len(str(len(explicit or [{}]) * len(points) - 1)))
    variants, seen = [], {}
    for n, (chosen, point) in enumerate(itertools.product(enumerate(explicit or [{}]), points)):
        i, fixed = chosen
        overrides = {**fixed, **point}

        def blame(dotted, value, detail, i=i):
            if dotted in grid:
                return ConfigError(
                    f"value {value!r}: {detail}", source=src, table=SWEEP, key=f'"{dotted}"'
                )
            return ConfigError(
                f"variant {i + 1}: {dotted} = {value!r}: {detail}",
                source=src,
                table=f"{SWEEP}.variants",
            )

        vid, label = f"v{n:0{width}d}", _label(overrides, all_keys)
        vraw = _apply(base, overrides)
        config = _validate(
            vraw, registry, source, overrides=overrides, label=label, blame=blame, origins=origins
        )
        key = json.dumps(config, sort_keys=True, default=str)
        if key in seen:
            raise ConfigError(
                f"variants {seen[key]} and {vid} ({label}) are the same experiment",
                source=src,
                table=SWEEP,
            )
        seen[key] = vid
        variants.append(Variant(n, vid, label, overrides, vraw, config))
    first = variants[0].config["experiment"]
    if seeds is None:
        resolved = build_experiment(
            copy.deepcopy(variants[0].raw), registry, source=source, origins=origins
        )
        seeds = [resolved.experiment.seed]
    digest = hashlib.sha256(
        json.dumps(
            {"format": 1, "variants": [v.config for v in variants]}, sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:16]
    return SweepPlan(
        first["name"],
        Path(source).resolve(),
        grid,
        variants,
        list(seeds),
        tuple(str(Path(f).resolve()) for f in plugin_files),
        digest,
        stats,
    )
