"""`rnnlab run CONFIG`: train and evaluate one experiment."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from ..report import epoch_progress, print_summary
from ..runner import run_experiment
from . import main
from .common import debug_option, load_experiment, plugin_option, set_option


@main.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@set_option
@plugin_option
@click.option("--out", "out_root", default="runs", show_default=True, type=click.Path(),
              help="Folder that receives the run directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@debug_option
def run(config, sets, plugin_paths, out_root, as_json):
    """Train and evaluate the experiment in CONFIG (a TOML file)."""
    experiment, registry = load_experiment(config, sets, plugin_paths)
    console = Console(stderr=as_json)
    summary, run_dir = run_experiment(experiment, registry, out_root=Path(out_root),
                                      progress=lambda n: epoch_progress(console, n),
                                      status=lambda m: console.print(m, highlight=False))
    if as_json:
        click.echo(json.dumps({**summary, "run_dir": str(run_dir.path)}, indent=2))
    else:
        print_summary(console, summary, run_dir.path)
