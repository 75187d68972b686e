"""Reading an experiment as every command and the Python API read it: a TOML file or a dict shaped
like one, its ``--set`` overrides (and where each came from), and its plugins; and a recorded
run's experiment back (from config.toml, with its plugins, for
`rnnlab resume`, `generate`, `plot` and :func:`rnnlab.load`).

A recorded run's task files and plugin files are resolved beside the experiment file it started
from (summary.json ``source``), as they were when it ran.

A plugin that fails to load is handed to ``warn`` (the CLI prints a line, the Python API issues
a warning); the others keep working.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RnnlabError
from ..registry.manager import PluginInfo, Registry, file_sha256
from ..store.rundir import CONFIG, RunDir
from .config import (
    apply_overrides,
    build_experiment,
    check_nesting,
    plugin_files,
    read_with_overrides,
)
from .schema import Experiment

ExperimentSource = str | os.PathLike[str] | Mapping[str, Any]
"""An experiment file (TOML), or a dict shaped like one: ``{"task": {"name": "sine"}, ...}``."""
Warn = Callable[[PluginInfo], None]


@dataclass
class Loaded:
    """An experiment as every command reads it: its tables after ``--set`` overrides, where
    each overridden key came from, the plugin files it loads, and the registry."""

    source: Path | None  # None: a dict
    raw: dict[str, Any]
    origins: dict[str, str]  # "table.key" -> "--set table.key=value"
    plugin_files: list[Path]
    registry: Registry

    def experiment(self) -> Experiment:
        """The validated experiment (ConfigError naming the file, ``<experiment>`` for a dict,
        or the ``--set`` to blame)."""
        return build_experiment(self.raw, self.registry, source=self.source, origins=self.origins)


def items(values: str | os.PathLike[str] | Iterable | None) -> list:
    """``--set`` values or plugin paths as a list; one string is one item, not its characters;
    None is none."""
    if values is None:
        return []
    if isinstance(values, str | os.PathLike):
        return [values]
    try:
        return list(values)
    except TypeError:
        raise TypeError(
            f"expected a string, a path or a list of them, not {type(values).__name__}"
        ) from None


def check_keys(raw: Mapping) -> None:
    """Every key of a dict experiment, at any depth, is a string, as in a TOML file: a
    ConfigError naming the first that is not."""
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConfigError(
                        f"key {key!r} is {type(key).__name__}; keys must be strings, as in "
                        "a TOML file",
                        source="<experiment>",
                        table=where,
                    )
                stack.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list | tuple):
            stack.extend((where, item) for item in value)


def read_experiment(
    experiment: ExperimentSource,
    sets: Iterable[str] = (),
    plugin_paths: Iterable[str | os.PathLike[str]] = (),
    *,
    warn: Warn,
) -> Loaded:
    """Read an experiment (or sweep) file, or a dict shaped like one, apply ``--set`` overrides
    and load its plugins.

    A dict's relative paths (``experiment.plugins``, a task's data files) are relative to the
    current directory; its plugin files are recorded with absolute paths, so that its run can be
    loaded or resumed from anywhere. The caller's dict is not changed.
    """
    if isinstance(experiment, Mapping):
        source = None
        check_nesting(experiment, source="<experiment>")  # before anything recurses into it
        check_keys(experiment)
        raw = absolute_plugins(copy.deepcopy(dict(experiment)))
        origins = apply_overrides(raw, items(sets))
    elif isinstance(experiment, str | os.PathLike):
        source = Path(experiment)
        raw, origins = read_with_overrides(source, items(sets))
    else:
        raise TypeError(
            f"experiment must be a TOML file's path or a dict, not {type(experiment).__name__}"
        )
    files = [*plugin_files(raw, source), *(Path(p) for p in items(plugin_paths))]
    registry = Registry(files)
    for info in registry.failures():
        warn(info)
    return Loaded(source, raw, origins, files, registry)


def absolute_plugins(raw: dict[str, Any]) -> dict[str, Any]:
    """``experiment.plugins`` of a dict made absolute (relative to the current directory), as
    its run directory records them; anything else is left to validation."""
    section = raw.get("experiment")
    files = section.get("plugins") if isinstance(section, dict) else None
    if isinstance(files, list) and all(isinstance(f, str | os.PathLike) for f in files):
        section["plugins"] = [str(Path(f).resolve()) for f in files]
    return raw


def load_experiment(
    experiment: ExperimentSource,
    sets: Iterable[str] = (),
    plugin_paths: Iterable[str | os.PathLike[str]] = (),
    *,
    warn: Warn,
) -> tuple[Experiment, Registry]:
    """Read, override and validate an experiment; return ``(experiment, registry)``."""
    loaded = read_experiment(experiment, sets, plugin_paths, warn=warn)
    return loaded.experiment(), loaded.registry


def load_run(
    run_dir: str | os.PathLike[str] | RunDir,
    sets: Iterable[str] = (),
    plugin_paths: Iterable[str | os.PathLike[str]] = (),
    *,
    warn: Warn,
) -> tuple[Experiment, Registry, RunDir]:
    """The experiment a run directory records, with overrides; return ``(experiment, registry,
    run_dir)``. Plugin files it names are found beside the experiment file it started from."""
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir.open(Path(run_dir))
    raw, origins = recorded_raw(run_dir, items(sets))
    registry, notes = run_registry(run_dir, raw, items(plugin_paths))
    for info in [*registry.failures(), *notes]:
        warn(info)
    return experiment_of(run_dir, raw, origins, registry), registry, run_dir


def original_source(run_dir: RunDir) -> Path | None:
    """The experiment file a run started from (relative task files and plugins live beside it)."""
    try:
        source = run_dir.read_summary().get("source")
    except RnnlabError:
        return None
    return Path(source) if source else None


def recorded_raw(run_dir: RunDir, sets=()) -> tuple[dict, dict]:
    """The run's config.toml tables with ``--set`` overrides applied, and their origins."""
    return read_with_overrides(run_dir.path / CONFIG, sets)


def run_registry(run_dir: RunDir, raw: dict, plugin_paths=()) -> tuple[Registry, list]:
    """The plugins a run used: those its experiment names, the plugin files it recorded
    (``--plugin`` files included), and ``plugin_paths``; and notes on recorded files that
    moved (unless a file of the same name is given) or changed since the run was made."""
    base = original_source(run_dir) or run_dir.path / CONFIG
    given = [Path(p) for p in plugin_paths]
    recorded, notes = recorded_plugins(run_dir, {p.stem for p in given})
    registry = Registry([*plugin_files(raw, base), *recorded, *given])
    return registry, notes


def recorded_plugins(run_dir: RunDir, given_names: set[str]) -> tuple[list[Path], list]:
    """The plugin files ``run_dir``'s summary records that are still where they were, and a
    note (a :class:`PluginInfo` to warn with) for each that moved or changed."""
    try:
        records = run_dir.read_summary().get("plugin_files") or []
    except RnnlabError:
        return [], []
    found, notes = [], []
    for record in records:
        path = Path(record["path"])
        if path.stem in given_names:
            continue  # the user names its new place
        if not path.is_file():
            status = (
                "failed: the run was made with this file and it is not there any more; "
                "give its new place with --plugin PATH"
            )
            notes.append(PluginInfo(path.stem, "file", str(path), status=status))
            continue
        found.append(path)
        if file_sha256(path) != record.get("sha256"):
            status = "changed since the run was made: results may differ from the run's"
            notes.append(PluginInfo(path.stem, "file", str(path), status=status))
    return found, notes


def recorded_experiment(run_dir: RunDir, registry, sets=()) -> Experiment:
    """The experiment a run directory records, with ``--set`` overrides."""
    return experiment_of(run_dir, *recorded_raw(run_dir, sets), registry)


def experiment_of(run_dir: RunDir, raw: dict, origins: dict, registry) -> Experiment:
    """Validate tables read by :func:`recorded_raw`; files resolve beside the original file."""
    exp = build_experiment(raw, registry, source=run_dir.path / CONFIG, origins=origins)
    original = original_source(run_dir)
    return replace(exp, source=original) if original else exp
