"""A search as rnnlab runs it: the base experiment, the [search] settings and the [stats] table,
checked before anything starts."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.settings import STATS, parse_stats_table
from ..errors import ConfigError
from ..experiment.config import build_experiment
from .space import SEARCH, SearchSettings, check_space, parse_search_table
from .study import require_optuna


@dataclass(frozen=True)
class SearchPlan:
    name: str  # the experiment's name; the study's name in its storage
    source: Path
    base: dict[str, Any]  # the experiment's raw tables without [search] and [stats]
    settings: SearchSettings
    stats: dict[str, Any]
    plugin_files: tuple[str, ...]
    fingerprint: str  # of the base experiment and the search, trials aside

    @property
    def directory_name(self) -> str:
        return f"search-{self.name}"


def build_search(raw: dict[str, Any], registry, *, source: Path, plugin_files=()) -> SearchPlan:
    """The search in ``raw`` (an experiment file's tables), validated."""
    src = str(source)
    if SEARCH not in raw:
        raise ConfigError(
            "no [search] table: nothing to search (run one experiment with `rnnlab run`)",
            source=src,
        )
    base = {k: v for k, v in raw.items() if k not in (SEARCH, STATS)}
    stats = parse_stats_table(raw.get(STATS), src).to_dict()
    seed = build_experiment(copy.deepcopy(base), registry, source=source).experiment.seed
    settings = parse_search_table(raw[SEARCH], src, seed)
    require_optuna()
    config = check_space(base, settings, registry, Path(source))
    config["experiment"].pop("seed", None)
    searched = {k: v for k, v in settings.to_dict().items() if k != "trials"}
    digest = hashlib.sha256(
        json.dumps({"config": config, "search": searched}, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return SearchPlan(
        config["experiment"]["name"],
        Path(source).resolve(),
        base,
        settings,
        stats,
        tuple(str(Path(f).resolve()) for f in plugin_files),
        digest,
    )
