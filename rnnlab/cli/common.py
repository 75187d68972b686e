"""Pieces shared by the subcommands: consoles, the --debug flag, loading an experiment."""

from __future__ import annotations

import os

import click
from rich.console import Console
from rich.markup import escape

from ..experiment import load as loader
from ..experiment.load import Loaded
from ..registry.manager import PluginInfo, Registry

DEBUG_KEY = "rnnlab.debug"


PIPED_WIDTH = 10_000  # off a terminal, no table is cut: a table takes the width it needs


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def out_console(stderr: bool = False) -> Console:
    """The console a command prints its results on: a terminal's width on a terminal (tables
    that do not fit drop columns or wrap), and off a terminal (a pipe, a file) whatever width
    a table needs, so that no number is cut; ``COLUMNS`` set in the environment wins."""
    console = Console(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
        console = Console(stderr=stderr, width=PIPED_WIDTH)
    return console


def set_debug(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_KEY] = True


def is_debug(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(DEBUG_KEY))


debug_option = click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    callback=set_debug,
    is_eager=True,
    help="Show tracebacks for errors.",
)
plugin_option = click.option(
    "--plugin",
    "plugin_paths",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="Load a .py file as a plugin (repeatable).",
)
set_option = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="TABLE.KEY=VALUE",
    help="Override a key of the experiment file (repeatable).",
)


def warn_failure(info: PluginInfo) -> None:
    err_console().print(
        f"[yellow]warning:[/yellow] plugin {escape(info.label)} {escape(info.status)}",
        highlight=False,
    )


def warn_failures(registry: Registry) -> None:
    for info in registry.failures():
        warn_failure(info)


def read_experiment(config: str, sets=(), plugin_paths=()) -> Loaded:
    """Read an experiment (or sweep) file, apply ``--set`` overrides and load its plugins."""
    return loader.read_experiment(config, sets, plugin_paths, warn=warn_failure)


def load_experiment(config: str, sets=(), plugin_paths=()):
    """Read, override and validate an experiment file; return ``(experiment, registry)``."""
    return loader.load_experiment(config, sets, plugin_paths, warn=warn_failure)


def load_run(run_path: str, sets=(), plugin_paths=()):
    """The experiment a run directory records, with overrides; return ``(experiment, registry,
    run_dir)``. Plugin files it names are found beside the experiment file it started from."""
    return loader.load_run(run_path, sets, plugin_paths, warn=warn_failure)
