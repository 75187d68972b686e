"""`rnnlab compare CONFIG --backends a,b`: one experiment on several backends, side by side."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..display import figures as plots
from ..display.terminal import fmt
from ..training.compare import compare, resolve_backends
from .common import debug_option, load_experiment, out_console, plugin_option, set_option


def compare_table(report: dict) -> Table:
    """One row per backend: timing, speed-up, final test metrics, difference from the first."""
    rows = report["rows"]
    first = rows[0]["backend"]
    table = Table(
        title=f"{report['experiment']}: {report['epochs']} epochs x "
        f"{report['repeats']} repeats, {report['dtype']}",
        caption=f"speed-up and max diff (largest relative difference of per-epoch "
        f"losses, final metrics and parameters) are against {first}; of allowed: the largest "
        f"share of what is allowed, the larger of {report['rtol']:g} and "
        f"{report['tolerance']['rounding_factor']:g}x what rounding alone moves",
    )
    for column in ("backend", "warm-up s", "ms/epoch (min-max)", "samples/s", "speed-up"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    metrics = list(rows[0]["test"])
    for name in metrics:
        table.add_column(f"test {name}", justify="right")
    table.add_column("max diff", justify="right")
    table.add_column("of allowed", justify="right")
    for row in rows:
        spe = row["seconds_per_epoch"]
        diff = max(row["max_difference"].values())
        mark = "" if row["agrees"] else " [red]DISAGREES[/red]"
        table.add_row(
            row["backend"],
            f"{row['warmup_seconds']:.2f}",
            f"{1e3 * spe['median']:.2f} ({1e3 * spe['min']:.1f}-{1e3 * spe['max']:.1f})",
            f"{row['samples_per_second']:,.0f}",
            f"{row['speedup']:.2f}x",
            *(fmt(row["test"].get(m, "")) for m in metrics),
            f"{diff:.1e}" if row["backend"] != first else "-",
            f"{row['excess']:.2g}{mark}" if row["backend"] != first else "-",
        )
    return table


def chart_name(experiment: str) -> str:
    """The chart's file name: the experiment's name, made safe as one file name."""
    safe = re.sub(r"[^\w.-]+", "_", experiment).strip("._")[:100]
    return f"{safe or 'compare'}.png"


def draw_chart(report: dict, path: Path, console: Console) -> None:
    """seconds per epoch per backend (median, with the min-max spread), when plotting is here."""
    if not plots.available():
        console.print(f"no chart: {plots.PLOT_HINT}", highlight=False)
        return
    rows = [
        {
            "backend": r["backend"],
            "seconds_per_epoch": r["seconds_per_epoch"]["median"],
            "seconds_min": r["seconds_per_epoch"]["min"],
            "seconds_max": r["seconds_per_epoch"]["max"],
        }
        for r in report["rows"]
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = plots.compare_chart(
            rows, path, f"{report['experiment']}: training time per epoch ({report['dtype']})"
        )
    except OSError as exc:
        console.print(f"no chart: cannot write {escape(str(path))}: {exc.strerror}")
        return
    console.print(f"chart written to {escape(str(written))}", highlight=False)


@click.command("compare")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--backends",
    default=None,
    metavar="A,B,...",
    help="Backends to compare, the first being the baseline (default: [compare] "
    "backends, else every available backend).",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=None,
    help="Runs per backend, interleaved a b a b (default: [compare] repeats, 3).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Train for this many epochs instead of the experiment's.",
)
@click.option(
    "--rtol",
    type=click.FloatRange(min=0),
    default=None,
    help="Relative difference from the first backend that always counts as agreement "
    "(default: 1e-9 for float64, 1e-2 for float32); more is allowed where the training "
    "amplifies rounding, up to 1000x what a one-ulp change of the learning rate moves.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--out",
    "out_dir",
    default="runs/compare",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder that receives the chart, named after the experiment.",
)
@click.option(
    "--chart",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bar chart of seconds per epoch per backend (needs rnnlab[plot]) "
    "[default: OUT/EXPERIMENT.png].",
)
@click.option("--no-chart", is_flag=True, help="Do not draw the bar chart.")
@set_option
@plugin_option
@debug_option
def compare_cmd(config, sets, plugin_paths, **options):
    """Run the experiment in CONFIG on several backends (same seed) and compare speed and
    results. Exits with status 1 when a backend differs from the first by more than the
    tolerance and more than rounding alone explains (measured by rerunning the first backend
    with its learning rate one ulp larger)."""
    backends, repeats, epochs, rtol, as_json, out_dir, chart, no_chart = (
        options[k]
        for k in (
            "backends",
            "repeats",
            "epochs",
            "rtol",
            "as_json",
            "out_dir",
            "chart",
            "no_chart",
        )
    )
    experiment, registry = load_experiment(config, sets, plugin_paths)
    names = [n.strip() for n in backends.split(",") if n.strip()] if backends else None
    names = resolve_backends(experiment, registry, names, "--backends" if names else None)
    repeats = repeats or experiment.compare.repeats
    console = out_console(stderr=as_json)

    def on_trial(repeat, trial):
        seconds = [r["seconds"] for r in trial.history]
        console.print(
            f"repeat {repeat + 1}/{repeats}  {trial.backend}: {len(seconds)} epochs, "
            f"{1000 * sum(seconds) / len(seconds):.2f} ms per epoch",
            highlight=False,
        )

    report = compare(
        experiment,
        registry,
        names,
        repeats=repeats,
        epochs=epochs,
        rtol=rtol,
        on_trial=on_trial,
        on_status=lambda m: console.print(m, highlight=False),
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        console.print(compare_table(report))
    if report["note"]:
        console.print(f"[bold]note:[/bold] {escape(report['note'])}", highlight=False)
    if not no_chart:
        draw_chart(report, chart or out_dir / chart_name(report["experiment"]), console)
    if not report["agree"]:
        bad = [r["backend"] for r in report["rows"] if not r["agrees"]]
        Console(stderr=True).print(
            f"[bold red]disagreement:[/bold red] {', '.join(bad)} "
            f"differ from {names[0]} by more than {report['rtol']:g} (relative) and more "
            "than rounding alone explains",
            highlight=False,
        )
        raise SystemExit(1)
