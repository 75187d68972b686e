"""Pieces shared by the subcommands: consoles, the --debug flag, loading an experiment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from ..config import build_experiment, plugin_files, read_with_overrides
from ..plugins import Registry
from ..reload import experiment_of, recorded_raw, run_registry
from ..runs import RunDir

DEBUG_KEY = "rnnlab.debug"


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def set_debug(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_KEY] = True


def is_debug(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(DEBUG_KEY))


debug_option = click.option("--debug", is_flag=True, expose_value=False, callback=set_debug,
                            is_eager=True, help="Show tracebacks for errors.")
plugin_option = click.option("--plugin", "plugin_paths", multiple=True, type=click.Path(),
                             metavar="PATH", help="Load a .py file as a plugin (repeatable).")
set_option = click.option("--set", "sets", multiple=True, metavar="TABLE.KEY=VALUE",
                          help="Override a key of the experiment file (repeatable).")


def warn_failures(registry: Registry) -> None:
    for info in registry.failures():
        err_console().print(f"[yellow]warning:[/yellow] plugin {escape(info.label)} "
                            f"{escape(info.status)}",
                            highlight=False)


@dataclass
class Loaded:
    """An experiment file as every command reads it: its tables after ``--set`` overrides,
    where each overridden key came from, the plugin files it loads, and the registry."""

    source: Path
    raw: dict[str, Any]
    origins: dict[str, str]  # "table.key" -> "--set table.key=value"
    plugin_files: list[Path]
    registry: Registry


def read_experiment(config: str, sets=(), plugin_paths=()) -> Loaded:
    """Read an experiment (or sweep) file, apply ``--set`` overrides and load its plugins."""
    source = Path(config)
    raw, origins = read_with_overrides(source, sets)
    files = [*plugin_files(raw, source), *(Path(p) for p in plugin_paths)]
    registry = Registry(files)
    warn_failures(registry)
    return Loaded(source, raw, origins, files, registry)


def load_experiment(config: str, sets=(), plugin_paths=()):
    """Read, override and validate an experiment file; return ``(experiment, registry)``."""
    loaded = read_experiment(config, sets, plugin_paths)
    exp = build_experiment(loaded.raw, loaded.registry, source=loaded.source,
                           origins=loaded.origins)
    return exp, loaded.registry


def load_run(run_path: str, sets=(), plugin_paths=()):
    """The experiment a run directory records, with overrides; return ``(experiment, registry,
    run_dir)``. Plugin files it names are found beside the experiment file it started from."""
    run_dir = RunDir.open(Path(run_path))
    raw, origins = recorded_raw(run_dir, sets)
    registry = run_registry(run_dir, raw, plugin_paths)
    warn_failures(registry)
    return experiment_of(run_dir, raw, origins, registry), registry, run_dir
