"""`rnnlab matrix DIR [DIR ...]`: which cell solves which task at which setting, from sweep
directories."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from ..analysis.matrix import matrix as results_matrix
from ..analysis.matrix_tables import BEGIN, END, into_page, markdown, rules, terminal_table
from ..errors import RnnlabError
from .common import debug_option, out_console


@click.command("matrix")
@click.argument(
    "directories", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True)
)
@click.option(
    "--metric",
    default=None,
    metavar="SPLIT.METRIC",
    help="The metric whose median is shown (default: the solved rule's, else [stats] metric).",
)
@click.option(
    "--solved",
    default=None,
    metavar='"SPLIT.METRIC OP NUMBER"',
    help="What counts as solved (default: [stats] solved, else what the task declares).",
)
@click.option(
    "--markdown",
    "markdown_file",
    default=None,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help=(
        "Also write the matrix as Markdown (command, date, machine, load, versions): between "
        f"the lines {BEGIN} and {END} of FILE when it has them, else as the whole file."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the matrix's rows as JSON.")
@debug_option
def matrix(directories, metric, solved, markdown_file, as_json):
    """The results matrix of sweep directories: task x swept task option x cell -> solve rate
    over seeds with its 95% Wilson interval, median of the task's main metric, mean wall time
    per run and the backend.

    The swept task option is every task key the sweep's variants set to different values; the
    cell is model.cell and the variant's other overrides (forget_bias=1.0, chrono_tmax=70).
    """
    rows = results_matrix([Path(d) for d in directories], metric=metric, solved=solved)
    if not rows:
        raise RnnlabError("no variants in " + ", ".join(directories))
    if markdown_file is not None:
        command = shlex.join(["rnnlab", "matrix", *directories, "--markdown", markdown_file])
        if metric is not None:
            command += f" --metric {shlex.quote(metric)}"
        if solved is not None:
            command += f" --solved {shlex.quote(solved)}"
        write_markdown(Path(markdown_file), rows, command)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    console = out_console()
    console.print(terminal_table(rows))
    console.print("solved: " + "; ".join(rules(rows)), highlight=False)
    if markdown_file is not None:
        console.print(f"written to {markdown_file}", highlight=False)


def write_markdown(path: Path, rows: list[dict], command: str) -> None:
    """Between the page's markers when it has them (the rest of the page kept), else the
    whole file."""
    try:
        page = path.read_text(encoding="utf-8") if path.is_file() else None
        spliced = into_page(page, rows, command) if page is not None else None
        path.write_text(spliced or markdown(rows, command), encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RnnlabError(f"--markdown {path}: cannot write ({exc})") from None
