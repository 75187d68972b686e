"""`rnnlab sweep CONFIG`: every variant and seed of the experiment file's [sweep] table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import RnnlabError
from ..executors import ExecutorOptions, make_executor
from ..sweep import build_plan, run_sweep
from ..sweep.report import SweepDisplay, print_report, to_json
from .common import debug_option, is_debug, out_console, plugin_option, read_experiment, set_option


def choose_executor(executor: str | None, workers: int | None, dask: str | None) -> str:
    """--executor NAME, else --dask -> dask, --workers 1 -> serial, otherwise local processes."""
    if dask is not None:
        if executor not in (None, "dask"):
            raise RnnlabError(f"--dask and --executor {executor} contradict each other")
        if workers is not None and dask != "local":
            raise RnnlabError(
                "--workers sets the size of a local cluster (--dask local); a "
                "remote cluster has the workers it has"
            )
        return "dask"
    if executor is not None:
        return executor
    return "serial" if workers == 1 else "local"


@click.command("sweep")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Runs at once (default: one per core); 1 runs them one after another.",
)
@click.option(
    "--dask",
    metavar="ADDRESS|local",
    default=None,
    help="Run on a Dask cluster at ADDRESS, or on a local one ('local').",
)
@click.option(
    "--executor",
    default=None,
    metavar="NAME",
    help="Executor by name: serial, local, dask, or one a plugin provides.",
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed run.")
@click.option(
    "--out",
    "out_root",
    default="runs",
    show_default=True,
    type=click.Path(),
    help="Folder that receives the sweep directory (named after the experiment).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@set_option
@plugin_option
@debug_option
@click.pass_context
def sweep(ctx, config, sets, plugin_paths, **options):
    """Run every variant of CONFIG's [sweep] table for every seed, in parallel.

    Running it again skips the runs that finished and reruns the others.
    """
    workers, dask, executor, fail_fast, out_root, as_json = (
        options[k] for k in ("workers", "dask", "executor", "fail_fast", "out_root", "as_json")
    )
    loaded = read_experiment(config, sets, plugin_paths)
    registry = loaded.registry
    plan = build_plan(
        loaded.raw,
        registry,
        source=loaded.source,
        plugin_files=loaded.plugin_files,
        origins=loaded.origins,
    )
    name = choose_executor(executor, workers, dask)
    engine = make_executor(registry, name, ExecutorOptions(workers=workers, address=dask))
    console = out_console(stderr=as_json)
    with SweepDisplay(console) as display:
        outcome = run_sweep(
            plan, engine, out_root=Path(out_root), fail_fast=fail_fast, display=display
        )
    if as_json:
        click.echo(json.dumps(to_json(outcome), indent=2, default=str))
    else:
        print_report(console, outcome, tracebacks=is_debug(ctx))
    if outcome.failed:
        ctx.exit(1)
