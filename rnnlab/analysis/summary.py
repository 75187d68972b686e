"""The statistics of a sweep or search directory: its runs' metric, grouped and compared."""

from __future__ import annotations

from dataclasses import replace

from ..errors import RnnlabError
from .collect import Collected
from .declared import declared_rule
from .settings import StatsSettings, split_metric
from .stats import table


def with_task_rule(collected: Collected, settings: StatsSettings) -> tuple[StatsSettings, str]:
    """``settings`` with the rule the runs' task declares (``Task.solved``) when they give no
    ``solved`` of their own, and where the rule came from: "settings", "task" or "" (none)."""
    if settings.solved is not None:
        return settings, "settings"
    rule = declared_rule(collected.configs, collected.source)
    if rule is None:
        return settings, ""
    return replace(settings, solved=str(rule)), "task"


def stats_of(collected: Collected, settings: StatsSettings, *, seed: int = 0) -> dict:
    """Per-variant statistics and pairwise tests of ``settings.metric`` (JSON-able). With no
    ``solved`` in ``settings``, the rule the task declares applies (see :func:`with_task_rule`)."""
    settings, solved_from = with_task_rule(collected, settings)
    try:
        split, metric = split_metric(settings.metric)
    except ValueError as exc:
        raise RnnlabError(f"--metric: {exc}") from None
    groups = collected.values(split, metric)
    if not groups:
        known = ", ".join(collected.metric_names()) or "none: no run has finished"
        raise RnnlabError(
            f"{collected.directory}: no finished run records {settings.metric} (recorded: {known})"
        )
    threshold = settings.threshold
    solved_values = None
    if threshold is not None:
        solved_values = collected.values(threshold.split, threshold.metric)
        if not solved_values:
            raise RnnlabError(
                f"{collected.directory}: solved = {settings.solved!r}, but no finished run "
                f"records {threshold.split}.{threshold.metric}"
            )
    result = table(
        groups,
        lower_is_better=settings.lower_is_better,
        threshold=threshold,
        solved_values=solved_values,
        seed=seed,
    )
    return {
        "directory": str(collected.directory),
        "kind": collected.kind,
        "metric": settings.metric,
        "direction": settings.direction,
        "solved_from": solved_from,
        "labels": {v: collected.labels.get(v, "") for v in groups},
        **result,
    }
