"""`rnnlab show RUN_DIR`: one run's config, final metrics, loss curve and the task's demo."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..display.terminal import (
    blas_line,
    demo_table,
    duration,
    fmt,
    gradient_flow_line,
    metrics_table,
)
from ..display.textplot import line_chart
from ..store.records import RunRecord, open_run
from .common import debug_option, out_console
from .runs_cmd import STATUS_STYLE

SUMMARY_KEYS = ("experiment", "task", "backend", "cell", "seed", "status")  # metrics_table's


def config_table(run: RunRecord) -> Table:
    """One row per table of config.toml, its keys as ``key=value``."""
    table = Table(title="config", title_justify="left", show_header=False)
    table.add_column("table", style="bold")
    table.add_column("values")
    for name, values in run.config.items():
        if isinstance(values, dict):
            cells = "  ".join(f"{k}={fmt(v)}" for k, v in values.items())
        else:
            cells = fmt(values)
        table.add_row(escape(name), escape(cells))
    return table


def loss_curve(run: RunRecord):
    """Train and validation loss per epoch as a terminal chart (log scale)."""
    records = [r for r in run.history if isinstance(r.get("epoch"), int)]
    series = {}
    for label, key in (("train loss", "loss"), ("val loss", "val_loss")):
        points = [(r["epoch"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        series[label] = ([e for e, _ in points], [v for _, v in points])
    return line_chart(series, x_label="epoch", y_label="loss per epoch")


def header(run: RunRecord) -> str:
    style = STATUS_STYLE.get(run.status, "red")
    planned = run.epochs_planned
    parts = [
        f"[bold]{escape(str(run.path))}[/bold]",
        f"[{style}]{run.status}[/{style}]",
        f"{run.epochs_run}{f'/{planned}' if planned else ''} epochs",
    ]
    if run.started:
        parts.append(f"started {run.started:%Y-%m-%d %H:%M:%S}")
    if run.duration is not None:
        parts.append(duration(run.duration))
    spe = run.summary.get("seconds_per_epoch")
    if isinstance(spe, int | float):
        parts.append(f"{duration(spe)} per epoch")
    return "  ".join(parts)


@click.command("show")
@click.argument("run_dir", type=click.Path(path_type=Path))
@debug_option
def show(run_dir):
    """Show one run: its config, final metrics, loss curve and the task's demo."""
    run = open_run(run_dir)
    console = out_console()
    console.print(header(run), highlight=False, soft_wrap=True)
    blas = blas_line(run.summary)  # what the epochs' matrix products ran on
    if blas:
        console.print(escape(blas), highlight=False)
    why = run.why
    if why:
        console.print(f"[yellow]{escape(why)}[/yellow]", highlight=False)
    if run.config:
        console.print(config_table(run))
    if run.metrics and all(k in run.summary for k in SUMMARY_KEYS):
        console.print(metrics_table(run.summary))
    else:
        console.print("[dim]no final metrics (the run did not finish)[/dim]")
    if run.history:
        console.print(loss_curve(run))
    else:
        console.print("[dim]no epochs recorded yet (metrics.jsonl is empty or missing)[/dim]")
    flow = gradient_flow_line(run.summary)
    if flow:
        console.print(escape(flow), highlight=False, soft_wrap=True)
    demo = run.summary.get("demo")
    if isinstance(demo, dict) and "title" in demo:
        console.print(demo_table(demo))
    figures = sorted(p.name for p in run.path.glob("*.png"))
    if figures:
        console.print(f"figures: {escape(', '.join(figures))}", highlight=False)
