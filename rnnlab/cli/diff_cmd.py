"""`rnnlab diff RUN_A RUN_B`: the config keys that differ, and both runs' results side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..display.terminal import fmt
from ..store.records import RunRecord, flat_config, metric_keys, open_run
from .common import debug_option, out_console

MISSING = object()
FACTS = (
    ("status", "status"),
    ("epochs run", "epochs_run"),
    ("best epoch", "best_epoch"),
    ("seconds per epoch", "seconds_per_epoch"),
    ("seconds in all", "wall_seconds"),
)


def config_differences(a: RunRecord, b: RunRecord) -> list[tuple[str, object, object]]:
    """``(table.key, value in a, value in b)`` for every key whose value differs (or that only
    one run has), in config order."""
    fa, fb = flat_config(a.config), flat_config(b.config)
    keys = list(dict.fromkeys([*fa, *fb]))
    return [
        (k, fa.get(k, MISSING), fb.get(k, MISSING))
        for k in keys
        if fa.get(k, MISSING) != fb.get(k, MISSING)
    ]


def shown(value) -> str:
    return "[dim](absent)[/dim]" if value is MISSING or value is None else escape(fmt(value))


def ratio(a, b) -> str:
    """B / A when both are numbers and A is not zero."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return f"{b / a:.3g}x" if numbers and a != 0 else ""


def differences_table(a: RunRecord, b: RunRecord) -> Table | str:
    rows = config_differences(a, b)
    if not rows:
        return "[green]the two configs are identical[/green]"
    table = Table(title="config keys that differ", title_justify="left")
    for column in ("key", "A", "B"):
        table.add_column(column)
    for key, va, vb in rows:
        table.add_row(escape(key), shown(va), shown(vb))
    return table


def results_table(a: RunRecord, b: RunRecord) -> Table:
    table = Table(title="results", title_justify="left")
    for column, justify in (("", "left"), ("A", "right"), ("B", "right"), ("B / A", "right")):
        table.add_column(column, justify=justify)
    for label, key in FACTS:
        va, vb = a.summary.get(key), b.summary.get(key)
        if key == "status":
            va, vb = a.status, b.status
        table.add_row(label, shown(va), shown(vb), "" if key == "status" else ratio(va, vb))
    table.add_section()
    for key in metric_keys([a, b]):
        va, vb = a.metric(key), b.metric(key)
        table.add_row(key, shown(va), shown(vb), ratio(va, vb))
    return table


def as_json(a: RunRecord, b: RunRecord) -> dict:
    def plain(v):
        return None if v is MISSING else v

    return {
        "a": str(a.path),
        "b": str(b.path),
        "config": [
            {"key": k, "a": plain(va), "b": plain(vb)} for k, va, vb in config_differences(a, b)
        ],
        "metrics": {key: {"a": a.metric(key), "b": b.metric(key)} for key in metric_keys([a, b])},
        **{key: {"a": a.summary.get(key), "b": b.summary.get(key)} for _, key in FACTS[1:]},
        "status": {"a": a.status, "b": b.status},
    }


@click.command("diff")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--json", "json_out", is_flag=True, help="Print the differences as JSON.")
@debug_option
def diff(run_a, run_b, json_out):
    """Compare two runs: config keys that differ, and their results side by side."""
    a, b = open_run(run_a), open_run(run_b)
    if json_out:
        click.echo(json.dumps(as_json(a, b), indent=2))
        return
    console = out_console()
    console.print(
        f"A: [bold]{escape(str(a.path))}[/bold]\nB: [bold]{escape(str(b.path))}[/bold]",
        highlight=False,
    )
    for label, run in (("A", a), ("B", b)):
        if run.problem:
            console.print(f"[yellow]{label}: {escape(run.problem)}[/yellow]", highlight=False)
    console.print(differences_table(a, b))
    console.print(results_table(a, b))
