"""`rnnlab runs [DIR]`: the runs under a folder as one table, sortable by a final metric."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..display.terminal import duration, fmt
from ..errors import RnnlabError
from ..store.records import RunRecord, find_runs, metric_keys, parse_metric_key
from .common import debug_option, out_console

STATUS_STYLE = {
    "finished": "green",
    "stopped": "cyan",
    "running": "blue",
    "interrupted": "yellow",
    "incomplete": "dim",
}  # others (failed, ...) red


def settings(run: RunRecord) -> str:
    """The key hyper-parameters in one short cell."""
    parts = []
    h, layers = run.get("model", "hidden_size"), run.get("model", "layers")
    if h is not None:
        parts.append(f"H={h}" + (f"x{layers}" if layers and layers != 1 else ""))
    if run.get("model", "bidirectional"):
        parts.append("bidirectional")
    if run.get("model", "dropout"):
        parts.append(f"dropout={fmt(run.get('model', 'dropout'))}")
    opt, lr = run.get("train", "optimizer"), run.get("train", "learning_rate")
    if opt is not None:
        parts.append(f"{opt} lr={fmt(lr)}" if lr is not None else str(opt))
    for label, table, key in (("B", "train", "batch_size"), ("seed", "experiment", "seed")):
        if run.get(table, key) is not None:
            parts.append(f"{label}={run.get(table, key)}")
    return " ".join(parts)


def metric_columns(runs: list[RunRecord], chosen: str, sort_key: str | None) -> list[str]:
    """The metric columns: ``chosen`` ("val.loss,test.mse"), or "all" for every val and test
    metric; then the sort key if not yet there."""
    keys = metric_keys(runs)
    if chosen == "all":
        columns = [k for k in keys if k.startswith(("val.", "test."))]
    else:
        columns = [
            parse_metric_key(k.strip(), option="--metrics") for k in chosen.split(",") if k.strip()
        ]
    if sort_key and sort_key not in columns:
        columns.append(sort_key)
    return columns


def order(runs: list[RunRecord], sort_key: str | None, reverse: bool) -> list[RunRecord]:
    """By start time; with a sort key, by that metric (runs without it last)."""
    runs = sorted(runs, key=lambda r: (r.started.timestamp() if r.started else 0.0, r.name))
    if not sort_key:
        return runs[::-1] if reverse else runs
    with_value = [r for r in runs if r.metric(sort_key) is not None]
    without = [r for r in runs if r.metric(sort_key) is None]
    return sorted(with_value, key=lambda r: r.metric(sort_key), reverse=reverse) + without


@dataclass
class Column:
    header: str
    cells: list[str]
    drop: int  # columns are dropped for a narrow terminal, lowest ``drop`` first; 99 never
    justify: str = "left"


def runs_columns(runs: list[RunRecord], metrics: list[str], sort_key: str | None) -> list[Column]:
    rows = []
    for run in runs:
        style = STATUS_STYLE.get(run.status, "red")
        planned = run.epochs_planned
        rows.append(
            {
                "run": escape(run.name),
                "started": run.started.strftime("%m-%d %H:%M") if run.started else "",
                "task backend cell": " ".join(v or "?" for v in (run.task, run.backend, run.cell)),
                "settings": settings(run),
                "status": f"[{style}]{run.status}[/{style}]",
                "epochs": f"{run.epochs_run}/{planned}" if planned else str(run.epochs_run),
                **{k: fmt(v) if (v := run.metric(k)) is not None else "" for k in metrics},
                "time": duration(run.duration),
            }
        )
    drops = {
        "run": 99,
        "status": 99,
        "started": 1,
        "settings": 2,
        "task backend cell": 3,
        "time": 4,
        "epochs": 5,
    }
    columns = []
    for key in (
        "run",
        "started",
        "task backend cell",
        "settings",
        "status",
        "epochs",
        *metrics,
        "time",
    ):
        header = f"{key} ▲" if key == sort_key else key
        if key in drops:
            drop, justify = drops[key], "right" if key in ("epochs", "time") else "left"
        else:  # metrics go last: validation before test, the rightmost first; the first
            # metric and the sort key stay
            base = 50 if key.startswith("val.") else 80
            drop = 99 if key in (sort_key, metrics[0]) else base - len(columns)
            justify = "right"
        columns.append(Column(header, [row[key] for row in rows], drop, justify))
    return columns


def fit_width(columns: list[Column], folder: Path, console: Console) -> tuple[Table, int]:
    """The table with the columns that fit the console's width, dropping the least needed
    first; and how many were dropped."""
    kept = list(columns)
    for column in sorted((c for c in columns if c.drop < 99), key=lambda c: c.drop):
        table = runs_table(kept, folder)
        if table.__rich_measure__(console, console.options).maximum <= console.width:
            break
        kept.remove(column)
    return runs_table(kept, folder), len(columns) - len(kept)


def runs_table(columns: list[Column], folder: Path) -> Table:
    table = Table(
        title=f"runs in {escape(str(folder))}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in columns:
        table.add_column(
            column.header,
            justify=column.justify,
            overflow="fold" if column.header == "run" else "ellipsis",
            no_wrap=column.header != "run",
        )
    for row in zip(*(c.cells for c in columns), strict=True):
        table.add_row(*row)
    return table


def problems(runs: list[RunRecord]) -> list[str]:
    """One line per run that did not finish cleanly or has a damaged file."""
    lines = []
    for run in runs:
        why = run.why
        if why:
            lines.append(f"{run.name}: {run.status}: {why}")
    return lines


@click.command("runs")
@click.argument("folder", default="runs", type=click.Path(path_type=Path))
@click.option(
    "--sort",
    "sort_key",
    metavar="SPLIT.METRIC",
    help="Order by a final metric, smallest first (e.g. test.mse, val.loss).",
)
@click.option("--reverse", is_flag=True, help="Reverse the order (largest or newest first).")
@click.option("--task", "task_name", metavar="NAME", help="Only runs of this task.")
@click.option(
    "--metrics",
    "chosen",
    default="val.loss,test.loss",
    show_default=True,
    metavar="KEYS",
    help="Metric columns, SPLIT.METRIC separated by commas, or 'all'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@debug_option
def runs(folder, sort_key, reverse, task_name, chosen, as_json):
    """List the runs under FOLDER (default: runs/): settings, status and final metrics."""
    console = out_console()
    if sort_key:
        parse_metric_key(sort_key, option="--sort")
    found = find_runs(folder) if folder.is_dir() else []
    selected = [r for r in found if task_name is None or r.task == task_name]
    if sort_key and selected and all(r.metric(sort_key) is None for r in selected):
        available = ", ".join(metric_keys(selected)) or "none"
        raise RnnlabError(f"--sort {sort_key}: no run has this metric (available: {available})")
    selected = order(selected, sort_key, reverse)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in selected], indent=2))
        return
    if not selected:
        console.print(empty_message(folder, found, task_name), highlight=False)
        return
    metrics = metric_columns(selected, chosen, sort_key)
    table, dropped = fit_width(runs_columns(selected, metrics, sort_key), folder, console)
    console.print(table)
    if dropped:
        console.print(
            f"[dim]{dropped} column(s) left out to fit the terminal's width; "
            f"--json has everything[/dim]"
        )
    for line in problems(selected):
        console.print(f"[dim]{escape(line)}[/dim]", highlight=False)


def empty_message(folder: Path, found: list[RunRecord], task_name: str | None) -> str:
    where = escape(str(folder))
    if not folder.exists():
        return f"no runs: {where} does not exist (rnnlab run EXPERIMENT.toml writes runs there)"
    if not folder.is_dir():
        return f"no runs: {where} is not a folder"
    if not found:
        return f"no runs in {where} yet (rnnlab run EXPERIMENT.toml writes runs there)"
    tasks = ", ".join(sorted({r.task or "?" for r in found}))
    return f"no runs of task {escape(repr(task_name))} in {where} (tasks there: {tasks})"
