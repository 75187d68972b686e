"""The ``[stats]`` table: which metric the statistics are about, and what counts as solved.

    [stats]
    metric = "test.loss"            # SPLIT.METRIC of the runs' summary (default "test.loss")
    direction = "minimize"          # or "maximize": which way is better (default "minimize")
    solved = "test.mse < 0.01"      # optional: a run whose test mse is below 0.01 solved the task

`rnnlab run` ignores the table; `rnnlab sweep` and `rnnlab search` record it with their runs,
and `rnnlab stats` reads it from there (its options override it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, closest
from ..experiment.schema import DIRECTIONS
from .stats import Threshold

STATS = "stats"
KEYS = ("metric", "direction", "solved")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class StatsSettings:
    metric: str = "test.loss"
    direction: str = "minimize"
    solved: str | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "minimize"

    @property
    def threshold(self) -> Threshold | None:
        return Threshold.parse(self.solved) if self.solved else None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "solved": self.solved}


def split_metric(text: Any) -> tuple[str, str]:
    """``"val.loss"`` -> ``("val", "loss")``; ValueError saying what is valid otherwise."""
    parts = text.split(".") if isinstance(text, str) else []
    if len(parts) != 2 or parts[0] not in SPLITS or not parts[1]:
        raise ValueError(
            f'{text!r} is not SPLIT.METRIC with SPLIT one of {", ".join(SPLITS)} (e.g. "val.loss")'
        )
    return parts[0], parts[1]


def parse_stats_table(table: Any, src: str) -> StatsSettings:
    """The [stats] table of an experiment file, checked (absent: the defaults)."""
    if table is None:
        return StatsSettings()
    if not isinstance(table, dict):
        raise ConfigError("must be a table", source=src, table=STATS)
    for key in table:
        if key not in KEYS:
            raise ConfigError(
                f"unknown key{closest(key, KEYS)} (valid: {', '.join(KEYS)})",
                source=src,
                table=STATS,
                key=key,
            )
    settings = StatsSettings(**table)
    checks = {"metric": split_metric, "solved": lambda t: t is None or Threshold.parse(t)}
    for key, check in checks.items():
        try:
            check(getattr(settings, key))
        except ValueError as exc:
            raise ConfigError(str(exc), source=src, table=STATS, key=key) from None
    if settings.direction not in DIRECTIONS:
        raise ConfigError(
            f"{settings.direction!r} is not one of {', '.join(DIRECTIONS)}",
            source=src,
            table=STATS,
            key="direction",
        )
    return settings
