"""The ``[search]`` table: what to search, over which ranges, scored how.

    [search]
    trials = 40                    # complete or pruned trials the study ends with
    metric = "val.loss"            # SPLIT.METRIC of the runs' summary
    direction = "minimize"         # or "maximize"
    sampler = "tpe"                # tpe, random, grid, qmc
    pruner = "median"              # none, median, asha, hyperband, wilcoxon
    seeds = [0, 1, 2]              # every trial runs each; its value is the mean over them
    seed = 0                       # the sampler's seed (default 0)
    storage = "sqlite:///s.db"     # optional: an Optuna RDB URL (default: a journal file)
    [search.space]
    "model.hidden_size" = { int = [8, 128], log = true }
    "train.learning_rate" = { float = [1e-4, 3e-2], log = true }
    "train.batch_size" = { int = [8, 64], step = 8 }
    "model.cell" = { choice = ["rnn", "lstm", "gru"] }
    "model.layers" = [1, 2]        # a list: the same as { choice = [1, 2] }

Any TABLE.KEY of the experiment may be searched. Everything is checked before a trial starts:
the table's shape, and the experiment with each end of every range and each choice applied.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.settings import split_metric
from ..errors import ConfigError, PluginError, closest
from ..experiment.config import build_experiment
from ..experiment.schema import DIRECTIONS, PRUNERS, SAMPLERS
from ..sweep.plan import _apply, _flatten
from ..training.session import load_backend

SEARCH = "search"
SPACE = f"{SEARCH}.space"
EPOCH_PRUNERS = ("median", "asha", "hyperband")
KEYS = ("trials", "metric", "direction", "sampler", "pruner", "seeds", "seed", "storage", "space")
# the per-epoch record's name for each metric an epoch records (what epoch pruners compare)
EPOCH_METRICS = {"val.loss": "val_loss", "train.loss": "loss"}
KINDS = ("int", "float", "choice")
OPTIONS = {"int": ("log", "step"), "float": ("log", "step"), "choice": ()}


@dataclass(frozen=True)
class Dimension:
    """One searched key: ``kind`` int, float or choice; ``low``/``high`` or ``choices``."""

    name: str  # "model.hidden_size"
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        out: dict[str, Any] = {self.kind: [self.low, self.high]}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def probes(self) -> list:
        """The values that stand for the whole range when the experiment is checked."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


@dataclass(frozen=True)
class SearchSettings:
    trials: int
    metric: str
    direction: str
    sampler: str
    pruner: str
    seeds: list[int]
    seed: int
    storage: str | None
    space: list[Dimension] = field(default_factory=list)

    @property
    def epoch_key(self) -> str | None:
        """The per-epoch record's key an epoch pruner compares, or None (no epoch pruning)."""
        return EPOCH_METRICS[self.metric] if self.pruner in EPOCH_PRUNERS else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "metric": self.metric,
            "direction": self.direction,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "seeds": self.seeds,
            "seed": self.seed,
            "storage": self.storage,
            "space": {d.name: d.to_dict() for d in self.space},
        }


def _error(message: str, src: str, key: str = "", table: str = SEARCH) -> ConfigError:
    return ConfigError(message, source=src, table=table, key=key)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_dimension(name: str, spec: Any, src: str) -> Dimension:
    key = f'"{name}"'
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict):
        raise _error(
            f"must be {{ int = [LOW, HIGH] }}, {{ float = [LOW, HIGH] }}, {{ choice = [...] }} "
            f"or a list of values, got {spec!r}",
            src,
            key,
            SPACE,
        )
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise _error(
            f"needs exactly one of {', '.join(KINDS)} (got {', '.join(spec) or 'none'})",
            src,
            key,
            SPACE,
        )
    kind = kinds[0]
    for option in spec:
        if option != kind and option not in OPTIONS[kind]:
            valid = [kind, *OPTIONS[kind]]
            raise _error(
                f"unknown option {option!r}{closest(option, valid)} (valid: {', '.join(valid)})",
                src,
                key,
                SPACE,
            )
    if kind == "choice":
        return _choice(name, spec["choice"], src, key)
    return _range(name, kind, spec, src, key)


def _choice(name: str, choices: Any, src: str, key: str) -> Dimension:
    if not isinstance(choices, list) or not choices:
        raise _error(f"choice must be a non-empty list, got {choices!r}", src, key, SPACE)
    for value in choices:
        if not isinstance(value, str | int | float | bool):
            raise _error(
                f"choice {value!r}: a choice is a string, number or boolean", src, key, SPACE
            )
    repeated = [v for i, v in enumerate(choices) if v in choices[:i]]
    if repeated:
        raise _error(f"choice lists {repeated[0]!r} twice", src, key, SPACE)
    return Dimension(name, "choice", choices=tuple(choices))


def _range(name: str, kind: str, spec: dict, src: str, key: str) -> Dimension:
    bounds, log, step = spec[kind], spec.get("log", False), spec.get("step")
    ok = _is_int if kind == "int" else _is_number
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(ok(b) for b in bounds)):
        what = "integers" if kind == "int" else "numbers"
        raise _error(f"{kind} must be [LOW, HIGH], two {what}, got {bounds!r}", src, key, SPACE)
    low, high = bounds
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise _error(f"{kind} = {bounds!r}: LOW must be below HIGH", src, key, SPACE)
    if not isinstance(log, bool):
        raise _error(f"log must be true or false, got {log!r}", src, key, SPACE)
    if log and low <= 0:
        raise _error(f"log = true needs LOW > 0, got {low!r}", src, key, SPACE)
    if step is not None:
        if log:
            raise _error("step and log = true cannot go together", src, key, SPACE)
        if not (ok(step) and step > 0):
            raise _error(f"step must be a positive {kind}, got {step!r}", src, key, SPACE)
    if kind == "float":
        low, high = float(low), float(high)
        step = float(step) if step is not None else None
    return Dimension(name, kind, low, high, log, step)


def parse_search_table(table: Any, src: str, default_seed: int) -> SearchSettings:
    """The [search] table, checked for shape (the experiment itself: :func:`check_space`)."""
    if not isinstance(table, dict):
        raise _error("must be a table", src)
    for key in table:
        if key not in KEYS:
            raise _error(f"unknown key{closest(key, KEYS)} (valid: {', '.join(KEYS)})", src, key)
    metric = table.get("metric", "val.loss")
    try:
        split_metric(metric)
    except ValueError as exc:
        raise _error(str(exc), src, "metric") from None
    direction = table.get("direction", "minimize")
    if direction not in DIRECTIONS:
        raise _error(f"{direction!r} is not one of {', '.join(DIRECTIONS)}", src, "direction")
    sampler = table.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise _error(
            f"{sampler!r}{closest(str(sampler), SAMPLERS)} is not one of {', '.join(SAMPLERS)}",
            src,
            "sampler",
        )
    pruner = table.get("pruner", "none")
    if pruner not in PRUNERS:
        raise _error(
            f"{pruner!r}{closest(str(pruner), PRUNERS)} is not one of {', '.join(PRUNERS)}",
            src,
            "pruner",
        )
    seeds = table.get("seeds", [default_seed])
    if not (isinstance(seeds, list) and seeds and all(_is_int(s) and s >= 0 for s in seeds)) or len(
        set(seeds)
    ) != len(seeds):
        raise _error(
            f"must be a non-empty list of distinct integers >= 0, got {seeds!r}", src, "seeds"
        )
    seed = table.get("seed", 0)
    if not (_is_int(seed) and seed >= 0):
        raise _error(f"must be an integer >= 0, got {seed!r}", src, "seed")
    storage = table.get("storage")
    if storage is not None and not (isinstance(storage, str) and "://" in storage):
        raise _error(
            f'must be a database URL such as "sqlite:///study.db", got {storage!r} '
            f"(leave it out for a journal file in the search directory)",
            src,
            "storage",
        )
    space_table = table.get("space")
    if not isinstance(space_table, dict) or not space_table:
        raise _error(
            "needs a [search.space] table of TABLE.KEY = { int|float|choice = ... }, e.g. "
            '"model.hidden_size" = { int = [8, 64] }',
            src,
            "space",
        )
    space = [
        parse_dimension(name, spec, src)
        for name, spec in _flatten(space_table, src=src, where=SPACE).items()
    ]
    trials = table.get("trials")
    if sampler == "grid":
        space_size = grid_size(space, src)
        trials = space_size if trials is None else trials
        if _is_int(trials) and trials > space_size:
            raise _error(
                f"{trials} trials, but the grid has only {space_size} points", src, "trials"
            )
    if not (_is_int(trials) and trials >= 1):
        raise _error(f"must be an integer >= 1, got {trials!r}", src, "trials")
    settings = SearchSettings(
        trials, metric, direction, sampler, pruner, list(seeds), seed, storage, space
    )
    _check_pruner(settings, src)
    return settings


def grid_size(space: list[Dimension], src: str) -> int:
    size = 1
    for d in space:
        if d.kind != "choice":
            raise _error(
                f'sampler = "grid" tries listed values only: make it a list or '
                f"{{ choice = [...] }}, not a {d.kind} range",
                src,
                f'"{d.name}"',
                SPACE,
            )
        size *= len(d.choices)
    return size


def _check_pruner(settings: SearchSettings, src: str) -> None:
    if settings.pruner == "wilcoxon" and len(settings.seeds) < 2:
        raise _error(
            "wilcoxon compares a trial with the best one seed by seed: it needs [search] "
            "seeds with at least 2 seeds",
            src,
            "pruner",
        )
    if settings.pruner in EPOCH_PRUNERS and settings.metric not in EPOCH_METRICS:
        raise _error(
            f"{settings.pruner} compares trials epoch by epoch, and epochs record only "
            f"{' and '.join(EPOCH_METRICS)}; with metric = {settings.metric!r} use "
            f'pruner = "wilcoxon" (over seeds) or "none"',
            src,
            "pruner",
        )


def check_space(base: dict, settings: SearchSettings, registry, source: Path) -> dict:
    """Build the base experiment, and the experiment with every probe value of every
    dimension applied; an error caused by a value is blamed on its [search.space] key.
    Returns the base's resolved tables."""
    src = str(source)
    exp = build_experiment(copy.deepcopy(base), registry, source=source)
    load_backend(exp, registry)
    for d in settings.space:
        for value in d.probes():
            raw = _apply(base, {d.name: value})
            try:
                probe = build_experiment(raw, registry, source=source)
                load_backend(probe, registry)
            except (ConfigError, PluginError) as exc:
                detail = getattr(exc, "detail", str(exc))
                raise _error(f"value {value!r}: {detail}", src, f'"{d.name}"', SPACE) from None
    return exp.to_dict()


def settings_from_dict(data: dict[str, Any]) -> SearchSettings:
    """:meth:`SearchSettings.to_dict` back (the form a worker gets and search.json keeps)."""
    space = [parse_dimension(name, spec, "search.json") for name, spec in data["space"].items()]
    fields = {k: v for k, v in data.items() if k != "space"}
    return SearchSettings(**fields, space=space)
