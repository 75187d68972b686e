"""`rnnlab plot RUN_DIR...`: draw each run's figures again, and overlay their loss curves and
their gradient flow."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from ..display import diagnostic_figures
from ..display import figures as plots
from ..errors import RnnlabError
from ..store.records import STAMP, RunRecord, find_runs, is_run_dir, open_run
from ..training.session import prepare
from .common import debug_option, load_run, out_console, plugin_option

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
        path = plots.loss_figure(
            {run.path.name: run.history},
            run.path / plots.LOSS_PNG,
            f"{run.path.name}: loss per epoch",
        )
        console.print(f"wrote {escape(str(path))}", highlight=False)
    else:
        console.print(f"[yellow]{escape(run.name)}: no epochs recorded, no loss.png[/yellow]")
    for path in diagnostic_figures.diagnostic_figures(
        run.path, run.history, run.summary.get("diagnostics")
    ):
        console.print(f"wrote {escape(str(path))}", highlight=False)
    if not with_task:
        return
    try:
        exp, registry, run_dir = load_run(str(run.path), (), plugin_paths)
        session = prepare(exp, registry)
        run_dir.load_params_into(session.model.params)
        path = plots.task_figure(session.task, session.model, session.dataset, run.path)
    except RnnlabError as exc:
        console.print(
            f"[yellow]{escape(run.name)}: no task figure: {escape(str(exc))}[/yellow]",
            highlight=False,
        )
        return
    if path is not None:
        console.print(f"wrote {escape(str(path))}", highlight=False)


@click.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "overlay",
    default=OVERLAY,
    show_default=True,
    type=click.Path(),
    help="Where the loss curves of several runs are overlaid in one figure.",
)
@click.option(
    "--flow-out",
    "flow_overlay",
    default=None,
    type=click.Path(),
    help=f"Where the gradient flow of several runs is overlaid in one figure "
    f"[default: {diagnostic_figures.FLOW_OVERLAY} beside --out].",
)
@click.option(
    "--no-task",
    "no_task",
    is_flag=True,
    help="Only loss curves: skip the task's figure (which rebuilds the data).",
)
@plugin_option
@debug_option
def plot(run_dirs, overlay, flow_overlay, no_task, plugin_paths):
    """Draw each run's loss.png, gradient_flow.png, recurrent_health.png and task figure again;
    overlay the loss curves, and the gradient flow at the end of training, of several runs (or
    of every run under a folder) in one figure each."""
    plots.require()
    runs = collect(run_dirs)
    console = out_console()
    for run in runs:
        redraw(run, plugin_paths, console, with_task=not no_task)
    if len(runs) > 1:
        curves = {run.name: run.history for run in runs if run.history}
        if curves:
            path = plots.loss_figure(curves, Path(overlay), f"loss per epoch, {len(curves)} runs")
            console.print(
                f"wrote {escape(str(path))} (the {len(curves)} runs overlaid)", highlight=False
            )
        flows = {
            label: run.summary["diagnostics"]["gradient_norm_by_step"]
            for run, label in flow_labels(runs)
        }
        if flows:
            where = (
                Path(flow_overlay)
                if flow_overlay
                else Path(overlay).parent / diagnostic_figures.FLOW_OVERLAY
            )
            path = diagnostic_figures.gradient_flow_figure(
                flows, where, f"gradient flow at the end of training, {len(flows)} runs", runs=True
            )
            console.print(
                f"wrote {escape(str(path))} (the gradient flow of {len(flows)} runs overlaid)",
                highlight=False,
            )


def flow_labels(runs: list[RunRecord]) -> list[tuple[RunRecord, str]]:
    """The runs whose summary holds a gradient flow, each with its label in the overlay: its
    name without the time stamp and its cell ("adding_rnn (rnn)"), or its whole directory name
    when two runs would share a label."""
    with_flow = [r for r in runs if diagnostic_figures.has_flow(r.summary.get("diagnostics"))]

    def label(run: RunRecord, name: str) -> str:
        return f"{name} ({run.cell})" if run.cell else name

    short = [label(r, STAMP.sub("", r.path.name).rstrip("-") or r.path.name) for r in with_flow]
    if len(set(short)) < len(short):
        short = [label(r, r.path.name) for r in with_flow]
    return list(zip(with_flow, short, strict=True))
