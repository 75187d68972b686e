"""`rnnlab plot RUN_DIR...`: draw each run's figures again, and overlay their loss curves."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from .. import plots
from ..errors import RnnlabError
from ..history import RunRecord, find_runs, is_run_dir, open_run
from ..reload import restore_session
from . import main
from .common import debug_option, plugin_option

OVERLAY = "loss-overlay.png"


def collect(paths: tuple[Path, ...]) -> list[RunRecord]:
    """The runs named: a run directory itself, or every run under a folder of runs."""
    runs = []
    for path in paths:
        if path.is_dir() and not is_run_dir(path):
            found = find_runs(path)
            if not found:
                raise RnnlabError(f"no runs in {path} (rnnlab run EXPERIMENT.toml writes them)")
            runs.extend(found)
        else:
            runs.append(open_run(path))
    return runs


def redraw(run: RunRecord, plugin_paths, console: Console, with_task: bool) -> None:
    """loss.png and the task's figure in the run's directory; what cannot be drawn is said."""
    if run.history:
        path = plots.loss_figure({run.path.name: run.history}, run.path / plots.LOSS_PNG,
                                 f"{run.path.name}: loss per epoch")
        console.print(f"wrote {escape(str(path))}", highlight=False)
    else:
        console.print(f"[yellow]{escape(run.name)}: no epochs recorded, no loss.png[/yellow]")
    if not with_task:
        return
    try:
        session, _ = restore_session(run, plugin_paths)
        path = plots.task_figure(session.task, session.model, session.dataset, run.path)
    except RnnlabError as exc:
        console.print(f"[yellow]{escape(run.name)}: no task figure: {escape(str(exc))}[/yellow]",
                      highlight=False)
        return
    if path is not None:
        console.print(f"wrote {escape(str(path))}", highlight=False)


@main.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "overlay", default=OVERLAY, show_default=True, type=click.Path(),
              help="Where the loss curves of several runs are overlaid in one figure.")
@click.option("--no-task", "no_task", is_flag=True,
              help="Only loss curves: skip the task's figure (which rebuilds the data).")
@plugin_option
@debug_option
def plot(run_dirs, overlay, no_task, plugin_paths):
    """Draw each run's loss.png and task figure again; overlay the loss curves of several runs
    (or of every run under a folder) in one figure."""
    plots.require()
    runs = collect(run_dirs)
    console = Console()
    for run in runs:
        redraw(run, plugin_paths, console, with_task=not no_task)
    if len(runs) > 1:
        curves = {run.name: run.history for run in runs if run.history}
        if curves:
            path = plots.loss_figure(curves, Path(overlay),
                                     f"loss per epoch, {len(curves)} runs")
            console.print(f"wrote {escape(str(path))} (the {len(curves)} runs overlaid)",
                          highlight=False)
