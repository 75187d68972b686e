"""`rnnlab run CONFIG`: train and evaluate one experiment (or continue one with --resume)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from ..report import epoch_progress, print_summary
from ..runner import resume_experiment, run_experiment
from ..runs import RunDir
from . import main
from .common import debug_option, load_experiment, load_run, plugin_option, set_option

json_option = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")


@main.command("run")
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@set_option
@plugin_option
@click.option("--out", "out_root", default="runs", show_default=True, type=click.Path(),
              help="Folder that receives the run directory.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), metavar="RUN_DIR",
              help="Continue the interrupted run in RUN_DIR (CONFIG, when given, must describe "
                   "the same experiment).")
@json_option
@debug_option
def run(config, sets, plugin_paths, out_root, resume_dir, as_json):
    """Train and evaluate the experiment in CONFIG (a TOML file)."""
    if config is None and resume_dir is None:
        raise click.UsageError("give an experiment file CONFIG, or --resume RUN_DIR")
    report_run(config, resume_dir, sets, plugin_paths, out_root, as_json)


def report_run(config, resume_dir, sets, plugin_paths, out_root, as_json) -> None:
    """Start (or resume) a run, showing progress, then print its summary."""
    console = Console(stderr=as_json)
    progress = lambda n: epoch_progress(console, n)  # noqa: E731
    if resume_dir is None:
        experiment, registry = load_experiment(config, sets, plugin_paths)
        summary, run_dir = run_experiment(experiment, registry, out_root=Path(out_root),
                                          progress=progress)
    else:
        if config is None:  # the experiment the run directory records
            experiment, registry, run_dir = load_run(resume_dir, sets, plugin_paths)
        else:  # the given file, which must describe the same experiment
            run_dir = RunDir.open(Path(resume_dir))
            experiment, registry = load_experiment(config, sets, plugin_paths)
        summary, run_dir = resume_experiment(run_dir, registry, progress=progress,
                                             experiment=experiment)
    if as_json:
        click.echo(json.dumps({**summary, "run_dir": str(run_dir.path)}, indent=2))
    else:
        print_summary(console, summary, run_dir.path)
