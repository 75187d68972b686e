"""Results tables written into the docs by the command that measured them, never copied by hand.

A page (docs/results/speed.md) holds a block per benchmark between two marker lines:

    <!-- generated: bars -->
    ...                        (replaced whole by the next run)
    <!-- end generated: bars -->

:func:`write_block` replaces what is between them with the figures and a "How this table was
measured" box made from the benchmark's machine record (benchmarks/machine.py): the command,
the date, the CPU and cores, the thread and kernel settings (``OPENBLAS_CORETYPE`` and the core
type OpenBLAS chose), the versions (Python, NumPy, numba, PyTorch, JAX) and the load average
before and after. Scripts call it with ``--write-docs``; for a script without that option,

    python benchmarks/results_page.py threads -- python benchmarks/threads.py --repeats 7

runs the command, shows its output as it comes, and writes that output (Markdown when the
command printed Markdown tables, else as a text block) into the block ``threads``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import machine

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "results" / "speed.md"
BEGIN, END = "<!-- generated: {} -->", "<!-- end generated: {} -->"
PACKAGES = (
    ("numpy", "NumPy"),
    ("numba", "numba"),
    ("threadpoolctl", "threadpoolctl"),
    ("torch", "PyTorch"),
    ("jax", "JAX"),
    ("jaxlib", "jaxlib"),
    ("optax", "optax"),
)


class NoBlock(Exception):
    """The page has no block of that name (its two marker lines)."""


def versions() -> str:
    """Python and the installed versions of the packages a benchmark may time."""
    out = [f"Python {sys.version.split()[0]}"]
    for dist, label in PACKAGES:
        try:
            out.append(f"{label} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def blas_text(info: dict) -> str:
    """NumPy's BLAS, its version, the core type it chose and its threads."""
    b = info.get("blas", {})
    if "threadpoolctl" in b:
        return "; ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture', '?')} kernels, "
            f"{p.get('num_threads')} threads)"
            for p in b["threadpoolctl"]
            if p.get("user_api") == "blas"
        )
    return f"{b.get('name', '?')} {b.get('version', '')} ({b.get('corename', '?')} kernels)"


def command_text(info: dict) -> str:
    """The command as run from the repository's root (``python benchmarks/NAME ...``)."""
    command = info.get("command", "?")
    script = command.split(" ", 1)[0]
    if script.endswith(".py") and "/" not in script:
        command = f"python benchmarks/{command}"
    nice = info.get("nice")
    return f"`{command}`" + (f" (niced: {nice})" if nice else "")


def load_text(info: dict) -> str:
    start, end = info.get("load_average_start"), info.get("load_average_end")
    show = lambda v: ", ".join(f"{x:g}" for x in v) if v else "?"  # noqa: E731
    text = f"{show(start)} at the start, {show(end)} at the end"
    if start and start[0] > machine.IDLE_LOAD:
        text += " (not idle: these figures were measured under load)"
    return text


def how_measured(info: dict, notes: tuple[str, ...] = ()) -> str:
    """The "How this table was measured" box of a machine record (benchmarks/machine.py)."""
    env = info.get("environment", {})
    settings = ", ".join(f"`{k}={v}`" if v is not None else f"`{k}` unset" for k, v in env.items())
    cores = info.get("cores", {})
    v = info.get("versions", {})
    numba = f"numba threads {v.get('numba_threads', '?')}" + (
        f" ({v['numba_threading_layer']} layer)" if "numba_threading_layer" in v else ""
    )
    lines = [
        f"**Command:** {command_text(info)}",
        f"**Date:** {info.get('date', '?')}",
        f"**Machine:** {info.get('cpu', '?')}, {cores.get('logical', '?')} logical cores "
        f"({cores.get('usable', '?')} usable), {info.get('platform', '?')}",
        f"**Threads and kernels:** {settings}; BLAS: {blas_text(info)}; {numba}",
        f"**Versions:** {info.get('versions_text') or versions()}; rnnlab "
        f"{info.get('rnnlab_commit') or '?'}",
        f"**Load average (1, 5, 15 min):** {load_text(info)}",
        *notes,
    ]
    return '!!! info "How this table was measured"\n' + "\n".join(f"    - {x}" for x in lines)


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = BEGIN.format(name), END.format(name)
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise NoBlock(
            f"no block {name!r}: put the two lines {begin!r} and {end!r} where it should go"
        )
    return pattern.sub(lambda _: f"{begin}\n{body.strip()}\n{end}", text, count=1)


def write_block(name: str, figures: str, info: dict, page: Path = PAGE, notes=()) -> Path:
    """Put ``figures`` (Markdown) and the box saying how they were measured into the block
    ``name`` of ``page``."""
    body = f"{figures.strip()}\n\n{how_measured(info, tuple(notes))}"
    page.write_text(replace_block(page.read_text(), name, body))
    return page


def add_write_docs(parser, block: str, what: str = "the table and how it was measured") -> None:
    """The ``--write-docs`` option of a script that writes block ``block`` of the speed page."""
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help=f"also write {what} into docs/results/speed.md (block {block})",
    )


def record(info: dict) -> dict:
    """``info`` with what a page shows besides machine.describe's: the niceness and every
    package's version."""
    info["nice"] = os.nice(0)
    info["versions_text"] = versions()
    return info


# lines of a command's output that the page's box already says or that only show progress
NOT_FIGURES = re.compile(
    r"^(date|machine|versions|blas|environment|load average \(1, 5, 15 min\)|command): "
    r"|^WARNING: 1-minute load average|repeat \d+/\d+ done"
)


def as_markdown(output: str) -> str:
    """A command's output for a page, without its header and progress lines: Markdown tables
    as they are (a line between paragraphs), anything else in a text block."""
    lines = [line for line in output.splitlines() if not NOT_FIGURES.search(line)]
    text = "\n".join(lines).strip()
    if re.search(r"^\|.*\|\s*$", text, re.M) and re.search(r"^\|[-|: ]+\|\s*$", text, re.M):
        text = re.sub(r"^([^|\n].*)\n(?=\|)", r"\1\n\n", text, flags=re.M)  # text, table
        return re.sub(r"^(\|.*)\n(?=[^|\n])", r"\1\n\n", text, flags=re.M) + "\n"  # table, text
    return f"```text\n{text}\n```"


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s [--page PAGE] BLOCK -- COMMAND ...",
    )
    ap.add_argument("block", help="the block's name on the page")
    ap.add_argument("--page", type=Path, default=PAGE)
    args = ap.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        ap.error("give the command after --")
    replace_block(args.page.read_text(), args.block, "")  # the block exists: fail early
    info = record(machine.describe(with_torch=False))
    shown = [Path(c).name if c == sys.executable else c for c in command]
    info["command"] = " ".join([Path(__file__).name, args.block, "--", *shown])
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    sys.stdout.write(proc.stdout)
    machine.finish(info)
    if proc.returncode != 0:
        sys.exit(f"the command failed (exit {proc.returncode}); {args.page} left as it was")
    page = write_block(args.block, as_markdown(proc.stdout), info, args.page)
    print(f"wrote block {args.block!r} of {page}")


if __name__ == "__main__":
    main()
