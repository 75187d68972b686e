"""What a task declares "solved" to mean (``Task.solved``), read for the runs of a sweep or
search through the plugin registry: the rule the statistics use when neither the command line
nor the experiment's ``[stats]`` table gives one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import PluginError, RnnlabError
from ..experiment.config import plugin_files
from ..registry import failures
from ..registry.manager import Registry
from ..specs import TaskContext
from .stats import OPS, Threshold

SPLIT = "test"  # a task's rule is about the test split's metric


def task_rule(config: dict[str, Any], source: Path | None, registries: dict | None = None):
    """The rule the task of ``config`` (a run's resolved config) declares, as a
    :class:`Threshold` on the test split, or None when it declares none or its plugin is not
    installed. ``registries`` caches a registry per set of plugin files."""
    table = dict(config.get("task", {}))
    name = table.pop("name", None)
    if not isinstance(name, str):
        return None
    files = tuple(plugin_files(config, source))
    cache = {} if registries is None else registries
    if files not in cache:
        cache[files] = Registry(list(files))
    registry = cache[files]
    if name not in registry.tasks:
        return None
    base = source.parent if source is not None else Path.cwd()
    try:
        task = failures.guarded_task(registry, name, table, TaskContext(base))
    except RnnlabError as exc:
        raise RnnlabError(f"reading what task {name!r} declares solved: {exc}") from None
    return as_threshold(getattr(task, "solved", None), registry.provider("task", name), name)


def as_threshold(declared, plugin: str, task: str) -> Threshold | None:
    """``(METRIC, OP, NUMBER)`` as a Threshold on the test split; a PluginError naming the
    plugin when the declaration is malformed."""
    if declared is None:
        return None
    ok = isinstance(declared, tuple | list) and len(declared) == 3
    if ok:
        metric, op, number = declared
        ok = (
            isinstance(metric, str)
            and metric.isidentifier()
            and op in OPS
            and isinstance(number, int | float)
            and not isinstance(number, bool)
            and math.isfinite(number)
        )
    if not ok:
        raise PluginError(
            f"plugin {plugin}: task {task!r} declares solved = {declared!r}; expected "
            f'(METRIC, OP, NUMBER) with OP one of {", ".join(OPS)}, e.g. ("accuracy", ">=", 0.9)'
        )
    return Threshold(SPLIT, metric, op, float(number))


def declared_rule(configs: dict[str, dict], source: Path | None) -> Threshold | None:
    """The rule the task of every config declares, when they all declare the same one (several
    tasks with different rules, or none: None)."""
    registries: dict = {}
    rules = {task_rule(c, source, registries) for c in configs.values()}
    return rules.pop() if len(rules) == 1 else None
