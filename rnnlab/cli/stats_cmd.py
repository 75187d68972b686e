"""`rnnlab stats DIR`: per-variant statistics over seeds and pairwise tests, for a sweep or
search directory."""

from __future__ import annotations

import json
from dataclasses import replace

import click
from rich.console import Console

from ..analysis.collect import collect, merge
from ..analysis.settings import StatsSettings, parse_stats_table
from ..analysis.summary import stats_of
from ..analysis.tables import print_stats
from ..errors import ConfigError, RnnlabError
from .common import debug_option


@click.command("stats")
@click.argument(
    "directories", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True)
)
@click.option(
    "--metric", default=None, metavar="SPLIT.METRIC", help="Default: [stats] metric, or test.loss."
)
@click.option(
    "--maximize/--minimize", default=None, help="Which way is better (default: [stats] direction)."
)
@click.option(
    "--solved",
    default=None,
    metavar='"SPLIT.METRIC OP NUMBER"',
    help='What counts as solved, e.g. "test.mse < 0.01" (default: [stats] solved).',
)
@click.option(
    "--top", type=click.IntRange(min=1), default=None, help="A search's N best trials (8)."
)
@click.option(
    "--best-by",
    default=None,
    metavar="TABLE.KEY",
    help="A search's best trial for each value of this parameter (e.g. model.cell).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="The bootstrap's seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@debug_option
def stats(directories, metric, maximize, solved, top, best_by, seed, as_json):
    """Statistics over seeds of a sweep's variants or a search's best trials: mean, std, median,
    95% BCa bootstrap interval, solve rate (Wilson), and pairwise t-tests (Welch's, or paired on
    shared seeds) with the probability of superiority, Holm-corrected.

    Several directories make one table (e.g. the best trial of one search per cell, --top 1).
    """
    collected = merge([collect(d, top=top, best_by=best_by) for d in directories])
    try:
        settings = parse_stats_table(collected.stats, str(collected.directory))
    except ConfigError as exc:
        raise RnnlabError(str(exc)) from None
    settings = override(settings, metric, maximize, solved)
    result = stats_of(collected, settings, seed=seed)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    print_stats(Console(), result, settings.metric, result["labels"])


def override(settings: StatsSettings, metric, maximize, solved) -> StatsSettings:
    """The recorded [stats] settings with the command line's options on top, checked."""
    changes = {}
    if metric is not None:
        changes["metric"] = metric
    if maximize is not None:
        changes["direction"] = "maximize" if maximize else "minimize"
    if solved is not None:
        changes["solved"] = solved
    out = replace(settings, **changes)
    try:
        parse_stats_table(out.to_dict(), "the command line")
    except ConfigError as exc:
        raise RnnlabError(f"--{exc.key}: {exc.detail}") from None
    return out
