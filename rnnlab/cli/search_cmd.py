"""`rnnlab search FILE|DIR`: an Optuna study over the experiment file's [search] space."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from ..errors import RunInterrupted
from ..executors import ExecutorOptions, make_executor
from ..registry.manager import Registry
from ..search import build_search, run_search
from ..search.directory import SEARCH_JSON, read_search
from ..search.report import SearchDisplay, print_report, to_json
from .common import debug_option, plugin_option, read_experiment, set_option, warn_failure
from .sweep_cmd import choose_executor


@click.command("search")
@click.argument("config", type=click.Path(exists=True))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Trials at once (default: one per core); 1 runs them one after another here.",
)
@click.option(
    "--dask",
    metavar="ADDRESS|local",
    default=None,
    help="Run on a Dask cluster at ADDRESS, or on a local one ('local').",
)
@click.option("--executor", default=None, metavar="NAME", help="Executor by name.")
@click.option(
    "--more",
    type=click.IntRange(min=0),
    default=0,
    help="Raise the number of trials by N (the study continues).",
)
@click.option(
    "--out",
    "out_root",
    default="runs",
    show_default=True,
    type=click.Path(),
    help="Folder that receives the search directory (search-NAME).",
)
@click.option("--no-figures", is_flag=True, help="Do not draw the search's figures.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@set_option
@plugin_option
@debug_option
@click.pass_context
def search(ctx, config, sets, plugin_paths, **options):
    """Search CONFIG's [search] space with Optuna, each trial run on every listed seed.

    Running the same command again resumes the study; CONFIG may also be a search directory
    (with --more N to extend it).
    """
    keys = ("workers", "dask", "executor", "more", "out_root", "no_figures", "as_json")
    workers, dask, executor, more, out_root, no_figures, as_json = (options[k] for k in keys)
    path = Path(config)
    if path.is_dir():
        plan, registry, directory = from_directory(path, sets, plugin_paths)
    else:
        loaded = read_experiment(config, sets, plugin_paths)
        registry = loaded.registry
        plan = build_search(
            loaded.raw, registry, source=loaded.source, plugin_files=loaded.plugin_files
        )
        directory = Path(out_root) / plan.directory_name
    name = choose_executor(executor, workers, dask)
    engine = make_executor(registry, name, ExecutorOptions(workers=workers, address=dask))
    console = Console(stderr=as_json)
    outcome = run_search(
        plan, engine, directory=directory, more=more, display=SearchDisplay(console)
    )
    data = to_json(outcome, with_figures=not no_figures)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        print_report(console, outcome, data)
    if outcome.interrupted:
        raise RunInterrupted(2, "")
    if outcome.gave_up:
        ctx.exit(1)


def from_directory(path: Path, sets, plugin_paths):
    """The search a directory records (its experiment, [search] and [stats] tables)."""
    from ..errors import RnnlabError

    if not (path / SEARCH_JSON).is_file():
        raise RnnlabError(f"{path}: not a search directory (no {SEARCH_JSON})")
    if sets:
        raise RnnlabError("--set changes a search's experiment: give the experiment file instead")
    record = read_search(path)
    files = [*record.get("plugin_files", []), *plugin_paths]
    registry = Registry([Path(f) for f in files])
    for info in registry.failures():
        warn_failure(info)
    raw = {**record["base"], "search": record["search"], "stats": record["stats"]}
    plan = build_search(raw, registry, source=Path(record["source"]), plugin_files=files)
    return plan, registry, path
