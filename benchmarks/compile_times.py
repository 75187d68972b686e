"""Numba's compile cost, cold and warm, each in a fresh process: per cell and dtype, and the
start of a whole `rnnlab run`.

Per cell (rnn, lstm, gru; ``--cell`` also mingru, minlstm, indrnn, lru) and dtype, a child
process with ``NUMBA_CACHE_DIR`` pointed at a new empty directory builds what training needs:
``backend.warm_up(plan)`` (the layer kernels) and ``rnnlab.training.loop.epoch_runner`` (the
fused epoch runner, when it covers the plan: the sine plan of benchmarks/backends.py at T=10
H=32 B=32, ``train.threads`` automatic), then runs two epochs (a first epoch much slower than
the second means something still compiled lazily). The row ``char`` does the same for the
stateful char plan of benchmarks/charmodel.py (rnn H=100, cross-entropy at every step, Adagrad,
clipping by value, chunks of 25: the core asks the backend for a runner with ``chunk_length``)
through ``rnnlab.training.loop.warm_up`` and ``train_epoch``, on a small text. The same child
runs again on the now-filled cache: the warm load, whose parameters after the two epochs must be
the same bytes as the cold run's (compared by SHA-256).

The start of `rnnlab run experiments/sine.toml --set train.backend=numba --set
train.epochs=1` is timed the same way, cold then warm: from process start to the line the run
prints once the backend is ready (the first epoch starts right after it), the run's own
``warmup_seconds`` (summary.json) and the whole process. The aim: warm < 1.5 s before the
first epoch.

Besides the line the run prints when the backend is ready, the run's timing gives the first
epoch's line (the first epoch done, validation included: the cold-start bar, first epoch <= 15 s
after the process starts on a quiet machine), the process's CPU seconds (user + sys: on a
shared machine a steadier measure than wall time, as compiling runs on one thread) and the
seconds between its last line and its exit.

``--breakdown`` runs the same cold `rnnlab run` in one child process that listens to numba's
compile events (``numba.core.event``, "numba:compile"; a load from the cache is no event):
every function and specialisation compiled, its own seconds (less those of the functions
compiled inside it) and its total, and the top-level compilations the run asked for. numba
optimises, for each compiled function, a module holding everything it calls, so a function's
own seconds include its callees' code again: the breakdown shows what is worth flattening.

    python benchmarks/compile_times.py                    # every cell, both dtypes, and the run
    python benchmarks/compile_times.py --cell rnn --dtype float32 --json
    python benchmarks/compile_times.py --run-only --repeats 2   # the cold start alone, twice
    python benchmarks/compile_times.py --breakdown        # where a cold run's compile time goes
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine
import results_page
from backends import console_for, emit, markdown
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
CHAR = "char"  # the stateful char plan (rnn H=100, xent at every step, adagrad, chunks of 25)
CHAR_TEXT = ("colorsys",)  # a small module: its epochs take a fraction of a second
CELLS = ("rnn", "lstm", "gru", CHAR)  # the default
NEWER_CELLS = ("mingru", "minlstm", "indrnn", "lru")  # on request (--cell)
DTYPES = ("float64", "float32")
RUN = ("run", "experiments/sine.toml", "--set", "train.backend=numba", "--set", "train.epochs=1")
READY = "backend 'numba' ready"  # what `rnnlab run` prints when the first epoch is about to start
# its line when the first epoch (and its validation) is done (not "epoch 1/1 still running")
FIRST_EPOCH = re.compile(r"\s*epoch 1/\d+\s+loss ")
WARM_START_BAR = 1.5  # seconds from process start to the first epoch, warm cache
COLD_START_BAR = 15.0  # seconds from process start to the first epoch done, empty cache
BREAKDOWN = "compile-breakdown: "  # the breakdown child's result line


def child(cell: str, dtype: str) -> dict:
    """In the fresh process: time the imports, then building what training needs and two
    epochs: of the T=10 H=32 B=32 sine plan for a cell, or (``cell == "char"``) of the stateful
    char experiment of benchmarks/charmodel.py on a small text, as the core runs it."""
    t0 = time.perf_counter()
    import numpy as np
    from backends import WINDOWS, Case, RnnlabContender, sine_data
    from charmodel import RnnlabChar

    from rnnlab.registry.manager import Registry

    Registry().backend("numba").load()  # imports numba and the backend's modules
    t1 = time.perf_counter()
    if cell == CHAR:  # warm_up + epoch_runner, through rnnlab.training.loop.warm_up
        c, order = RnnlabChar("numba", CHAR_TEXT, dtype), None
    else:
        case = Case(10, 32, 32, cell, dtype=dtype)
        c = RnnlabContender("numba", case, sine_data(case.T, dtype))  # warm_up + epoch_runner
        order = np.random.default_rng(0).permutation(WINDOWS)
    first, second = c.epoch(order), c.epoch(order)
    params = c.session.model.params if cell == CHAR else c.model.params
    digest = hashlib.sha256(
        b"".join(np.ascontiguousarray(params[k]).tobytes() for k in sorted(params))
    )
    return {
        "params_sha256": digest.hexdigest(),
        "imports_s": t1 - t0,
        "build_s": c.warmup,
        "path": c.path,
        "first_epoch_s": first,
        "second_epoch_s": second,
    }


def children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_fresh_process(args: list[str], cache: str) -> tuple[float, list[tuple[float, str]]]:
    """Run ``python args`` with ``NUMBA_CACHE_DIR=cache``; the wall seconds and every output
    line with the seconds since the start at which it arrived."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONUNBUFFERED="1", COLUMNS="200")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = [(time.perf_counter() - t0, line.rstrip("\n")) for line in proc.stdout]
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n" + "\n".join(t for _, t in lines[-20:]))
    return wall, lines


def cell_compile(cell: str, dtype: str) -> dict:
    """Cold then warm, in a new cache directory of their own."""
    out: dict = {"cell": cell, "dtype": dtype}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        for kind in ("cold", "warm"):
            wall, lines = in_fresh_process([__file__, "--child", cell, dtype], cache)
            out[kind] = {**json.loads(lines[-1][1]), "process_s": wall}
    return out


def run_start() -> dict:
    """`rnnlab run` on the sine experiment for one epoch on numba, cold then warm."""
    out: dict = {"command": "rnnlab " + " ".join(RUN)}
    with (
        tempfile.TemporaryDirectory(prefix="numba-cache-") as cache,
        tempfile.TemporaryDirectory(prefix="runs-") as runs,
    ):
        for kind in ("cold", "warm"):
            target = Path(runs, kind)
            load, cpu = os.getloadavg()[0], children_cpu()
            wall, lines = in_fresh_process(["-m", "rnnlab", *RUN, "--out", str(target)], cache)
            ready = next((t for t, line in lines if READY in line), None)
            epoch = next((t for t, line in lines if FIRST_EPOCH.match(line)), None)
            summaries = list(target.glob("*/summary.json"))
            summary = json.loads(summaries[0].read_text()) if summaries else {}
            out[kind] = {
                "to_first_epoch_s": ready,
                "first_epoch_done_s": epoch,
                "warmup_seconds": summary.get("warmup_seconds"),
                "process_s": wall,
                "cpu_s": children_cpu() - cpu,
                "exit_s": wall - lines[-1][0] if lines else None,
                "load": [load, os.getloadavg()[0]],
            }
    warm, cold = out["warm"]["to_first_epoch_s"], out["cold"]["first_epoch_done_s"]
    out["bar"] = f"warm start < {WARM_START_BAR} s before the first epoch"
    out["pass"] = None if warm is None else warm < WARM_START_BAR
    out["cold_bar"] = f"cold: first epoch done <= {COLD_START_BAR} s after the process starts"
    out["cold_pass"] = None if cold is None else cold <= COLD_START_BAR
    return out


# -- where a cold run's compile time goes ------------------------------------------------------
def breakdown_child(args: list[str]) -> None:
    """In the fresh process: `rnnlab ARGS` with a listener on numba's compile events; one JSON
    line at exit: every compilation (function, its argument types, own and total seconds,
    nesting depth, when it ended)."""
    import atexit

    from numba.core import event

    rows, stack, t0 = [], [], time.perf_counter()

    class Timer(event.Listener):
        def on_start(self, ev):
            stack.append([ev.data["dispatcher"].py_func, ev.data["args"], time.perf_counter(), 0])

        def on_end(self, ev):
            func, types, start, inner = stack.pop()
            total = time.perf_counter() - start
            if stack:
                stack[-1][3] += total
            name = f"{func.__module__}.{func.__qualname__}"
            at = time.perf_counter() - t0
            rows.append([name, str(types), total - inner, total, len(stack), at])

    event.register("numba:compile", Timer())
    atexit.register(lambda: print(BREAKDOWN + json.dumps(rows), flush=True))
    from rnnlab.cli import main as cli

    sys.argv = ["rnnlab", *args]
    cli()


def breakdown(top: int) -> dict:
    """A cold `rnnlab run` (one epoch of the sine run on numba) with its compilations timed."""
    with (
        tempfile.TemporaryDirectory(prefix="numba-cache-") as cache,
        tempfile.TemporaryDirectory(prefix="runs-") as runs,
    ):
        load, cpu = os.getloadavg()[0], children_cpu()
        args = [__file__, "--breakdown-child", *RUN, "--out", runs]
        wall, lines = in_fresh_process(args, cache)
    found = [line for _, line in lines if line.startswith(BREAKDOWN)]
    rows = json.loads(found[-1][len(BREAKDOWN) :]) if found else []
    keys = ("function", "types", "own_s", "total_s", "depth", "ended_at_s")
    rows = [dict(zip(keys, row, strict=True)) for row in rows]
    return {
        "command": "rnnlab " + " ".join(RUN),
        "process_s": wall,
        "cpu_s": children_cpu() - cpu,
        "load": [load, os.getloadavg()[0]],
        "compilations": len(rows),
        "own_sum_s": sum(r["own_s"] for r in rows),
        "top_level": [r for r in rows if r["depth"] == 0],
        "slowest": sorted(rows, key=lambda r: -r["own_s"])[:top],
    }


def show_breakdown(console: Console, result: dict, as_markdown: bool = False) -> None:
    console.print(
        f"{result['command']}, cold: {result['compilations']} compilations, their own seconds "
        f"summing to {result['own_sum_s']:.1f}; process {result['process_s']:.1f} s wall, "
        f"{result['cpu_s']:.1f} s CPU; load {result['load'][0]:.2f} -> {result['load'][1]:.2f}",
        highlight=False,
    )
    for title, rows in (("top-level", result["top_level"]), ("slowest", result["slowest"])):
        t = Table(title=f"{title} compilations (seconds: own = less those compiled inside)")
        for col in ("function", "own", "total", "depth", "ended at", "types"):
            t.add_column(col, justify="right" if col in ("own", "total", "ended at") else None)
        for r in rows:
            t.add_row(
                r["function"].replace("rnnlab_numba.", ""),
                f"{r['own_s']:.2f}",
                f"{r['total_s']:.2f}",
                str(r["depth"]),
                f"{r['ended_at_s']:.1f}",
                r["types"][:60],
            )
        emit(console, t, as_markdown)


def measure(dtypes, log, cells=CELLS, with_run: bool = True) -> dict:
    out: dict = {"cells": []}
    for dtype in dtypes:
        for cell in cells:
            out["cells"].append(cell_compile(cell, dtype))
            log(f"compile {cell} {dtype} done")
    if with_run:
        out["run"] = run_start()
        log("rnnlab run start done")
    return out


def _s(value) -> str:
    return "-" if value is None else f"{value:.2f}"


BUILD_NOTE = (
    "build = backend.warm_up(plan) + rnnlab.training.loop.epoch_runner (the T=10 H=32 B=32 sine "
    "plan; char: the stateful char plan); a 1st epoch much slower than the 2nd: something "
    "compiled lazily; process = the whole child process; imports = rnnlab and numba, warm; "
    "warm = cold bytes: the parameters after the two epochs are the same bytes (SHA-256) whether "
    "the kernels were just compiled or loaded from the cache"
)


def cells_table(result: dict) -> Table:
    t = Table(
        title="numba compile, seconds, each in a fresh process (cold: empty NUMBA_CACHE_DIR; "
        "warm: the cache the cold run filled)"
    )
    for col in ("cell", "dtype", "path"):
        t.add_column(col)
    for col in ("cold build", "cold epoch 1 / 2", "cold process", "warm build"):
        t.add_column(col, justify="right")
    for col in ("warm process", "imports", "warm = cold bytes"):
        t.add_column(col, justify="right")
    for row in result["cells"]:
        cold, warm = row["cold"], row["warm"]
        t.add_row(
            row["cell"],
            row["dtype"],
            cold["path"],
            _s(cold["build_s"]),
            f"{1e3 * cold['first_epoch_s']:.1f} / {1e3 * cold['second_epoch_s']:.1f} ms",
            _s(cold["process_s"]),
            _s(warm["build_s"]),
            _s(warm["process_s"]),
            _s(warm["imports_s"]),
            "yes" if warm.get("params_sha256") == cold.get("params_sha256") else "NO",
        )
    return t


def run_lines(run: dict) -> list[str]:
    """The `rnnlab run` start, cold and warm, and its two bars."""
    lines = []
    for kind in ("cold", "warm"):
        r = run[kind]
        lines.append(
            f"{run['command']}, {kind} cache: first epoch starts {_s(r['to_first_epoch_s'])} s "
            f"and is done {_s(r.get('first_epoch_done_s'))} s after process start "
            f"(warmup_seconds {_s(r['warmup_seconds'])}), whole process "
            f"{_s(r['process_s'])} s, {_s(r.get('cpu_s'))} s CPU, exit {_s(r.get('exit_s'))} s "
            f"after the last line; load {r['load'][0]:.2f} -> {r['load'][1]:.2f}"
        )
    verdict = {True: "PASS", False: "FAIL", None: f"? (no line containing {READY!r})"}[run["pass"]]
    lines.append(f"bar: {run['bar']}: {verdict}")
    cold = {True: "PASS", False: "FAIL", None: "?"}[run.get("cold_pass")]
    lines.append(f"bar: {run.get('cold_bar')}: {cold}")
    return lines


def show(console: Console, result: dict, as_markdown: bool = False) -> None:
    if result["cells"]:
        emit(console, cells_table(result), as_markdown)
        console.print(BUILD_NOTE, highlight=False)
    if "run" in result:
        for line in run_lines(result["run"]):
            console.print(line, highlight=False)


def docs_figures(result: dict) -> str:
    """The tables and lines of ``result`` as Markdown, for the results page."""
    parts = []
    if result["cells"]:
        parts += [markdown(cells_table(result)), BUILD_NOTE]
    for run in result.get("runs", [result["run"]] if "run" in result else []):
        parts.append("\n".join(f"- {line}" for line in run_lines(run)))
    return "\n\n".join(parts)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cell",
        action="append",
        choices=CELLS + NEWER_CELLS,
        help=f"default: {', '.join(CELLS)}",
    )
    ap.add_argument("--dtype", action="append", choices=DTYPES, help="default: both")
    ap.add_argument("--no-run", action="store_true", help="leave out the `rnnlab run` start")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--run-only", action="store_true", help="only the `rnnlab run` start")
    ap.add_argument("--repeats", type=int, default=1, help="`rnnlab run` starts (cold, warm)")
    ap.add_argument("--breakdown", action="store_true", help="where a cold run's compile time goes")
    results_page.add_write_docs(
        ap, "compile; not with --breakdown", "the tables and how they were measured"
    )
    ap.add_argument("--top", type=int, default=25, help="--breakdown: functions listed")
    ap.add_argument("--child", nargs=2, metavar=("CELL", "DTYPE"), help=argparse.SUPPRESS)
    ap.add_argument("--breakdown-child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.breakdown_child:
        breakdown_child(args.breakdown_child)
        return
    if args.write_docs and args.breakdown:
        ap.error("--write-docs writes the compile times, not --breakdown's table")
    console = console_for(args.json)
    info = results_page.record(machine.describe(with_torch=False))
    warning = machine.idle_warning(info)
    if warning:
        console.print(warning, highlight=False, markup=False)
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    if args.breakdown:
        result = breakdown(args.top)
    elif args.run_only:
        result = {"cells": [], "runs": [run_start() for _ in range(args.repeats)]}
        result["run"] = result["runs"][-1]
    else:
        result = measure(args.dtype or DTYPES, log, args.cell or CELLS, not args.no_run)
    machine.finish(info)
    if args.write_docs:
        notes = [
            "**Caches:** every cold measurement in a new empty `NUMBA_CACHE_DIR` of its own, "
            "the warm one in the cache its cold one filled"
        ]
        page = results_page.write_block("compile", docs_figures(result), info, notes=notes)
        log(f"wrote block 'compile' of {page}")
    if args.json:
        print(json.dumps({"machine": info, "compile": result}, indent=2))
        return
    if args.breakdown:
        show_breakdown(console, result, args.markdown)
    else:
        for run in result.get("runs", [])[:-1]:
            show(console, {"cells": [], "run": run}, args.markdown)
        show(console, result, args.markdown)
    for line in machine.header_lines(info):
        console.print(line, highlight=False, markup=False)


if __name__ == "__main__":
    main()
