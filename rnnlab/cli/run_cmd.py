"""`rnnlab run CONFIG`: train and evaluate one experiment (or continue one with --resume)."""

from __future__ import annotations

import json

import click

from ..api import continue_run, start_run
from ..display.terminal import print_summary
from .common import debug_option, out_console, plugin_option, set_option, warn_failure

json_option = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")


@click.command("run")
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@set_option
@plugin_option
@click.option(
    "--out",
    "out_root",
    default="runs",
    show_default=True,
    type=click.Path(),
    help="Folder that receives the run directory.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    metavar="RUN_DIR",
    help="Continue the interrupted run in RUN_DIR (CONFIG, when given, must describe "
    "the same experiment).",
)
@json_option
@debug_option
def run(config, sets, plugin_paths, out_root, resume_dir, as_json):
    """Train and evaluate the experiment in CONFIG (a TOML file)."""
    if config is None and resume_dir is None:
        raise click.UsageError("give an experiment file CONFIG, or --resume RUN_DIR")
    report_run(config, resume_dir, sets, plugin_paths, out_root, as_json)


def report_run(config, resume_dir, sets, plugin_paths, out_root, as_json) -> None:
    """Start (or resume) a run through the Python API, showing progress, then print its
    summary (or, with --json, the summary as JSON on stdout and everything else on stderr)."""
    console = out_console(stderr=as_json)
    if resume_dir is None:
        run = start_run(
            config,
            sets=sets,
            out=out_root,
            plugins=plugin_paths,
            console=console,
            warn=warn_failure,
        )
    else:  # CONFIG, when given, must describe the experiment the run records
        run = continue_run(
            resume_dir,
            experiment=config,
            sets=sets,
            plugins=plugin_paths,
            console=console,
            warn=warn_failure,
        )
    if as_json:
        click.echo(json.dumps({**run.summary, "run_dir": str(run.dir)}, indent=2))
    else:
        print_summary(console, run.summary, run.dir)
