"""Numba's compile cost, cold and warm, each in a fresh process: per cell and dtype, and the
start of a whole `rnnlab run`.

Per cell (rnn, lstm, gru) and dtype, a child process with ``NUMBA_CACHE_DIR`` pointed at a new
empty directory builds what training needs: ``backend.warm_up(plan)`` (the layer kernels) and
``rnnlab.training.loop.epoch_runner`` (the fused epoch runner, when it covers the plan: the sine
plan
of benchmarks/backends.py at T=10 H=32 B=32, ``train.threads`` automatic), then runs two epochs
(a first epoch much slower than the second means something still compiled lazily). The row
``char`` does the same for the stateful char plan of benchmarks/charmodel.py (rnn H=100,
cross-entropy at every step, Adagrad, clipping by value, chunks of 25: the core asks the backend
for a runner with ``chunk_length``) through ``rnnlab.training.loop.warm_up`` and ``train_epoch``,
on a
small text. The same child runs again on the now-filled cache: the warm load.

The start of `rnnlab run experiments/sine.toml --set train.backend=numba --set
train.epochs=1` is timed the same way, cold then warm: from process start to the line the run
prints once the backend is ready (the first epoch starts right after it), the run's own
``warmup_seconds`` (summary.json) and the whole process. The aim: warm < 1.5 s before the
first epoch.

    python benchmarks/compile_times.py                    # every cell, both dtypes, and the run
    python benchmarks/compile_times.py --cell rnn --dtype float32 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine
from backends import console_for, emit
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
CHAR = "char"  # the stateful char plan (rnn H=100, xent at every step, adagrad, chunks of 25)
CHAR_TEXT = ("colorsys",)  # a small module: its epochs take a fraction of a second
CELLS = ("rnn", "lstm", "gru", CHAR)
DTYPES = ("float64", "float32")
RUN = ("run", "experiments/sine.toml", "--set", "train.backend=numba", "--set", "train.epochs=1")
READY = "backend 'numba' ready"  # what `rnnlab run` prints when the first epoch is about to start
WARM_START_BAR = 1.5  # seconds from process start to the first epoch, warm cache


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
    return {
        "imports_s": t1 - t0,
        "build_s": c.warmup,
        "path": c.path,
        "first_epoch_s": first,
        "second_epoch_s": second,
    }


def in_fresh_process(args: list[str], cache: str) -> tuple[float, list[tuple[float, str]]]:
    """Run ``python args`` with ``NUMBA_CACHE_DIR=cache``; the wall seconds and every output
    line with the seconds since the start at which it arrived."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONUNBUFFERED="1")
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
            wall, lines = in_fresh_process(["-m", "rnnlab", *RUN, "--out", str(target)], cache)
            ready = next((t for t, line in lines if READY in line), None)
            summaries = list(target.glob("*/summary.json"))
            summary = json.loads(summaries[0].read_text()) if summaries else {}
            out[kind] = {
                "to_first_epoch_s": ready,
                "warmup_seconds": summary.get("warmup_seconds"),
                "process_s": wall,
            }
    warm = out["warm"]["to_first_epoch_s"]
    out["bar"] = f"warm start < {WARM_START_BAR} s before the first epoch"
    out["pass"] = None if warm is None else warm < WARM_START_BAR
    return out


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


def show(console: Console, result: dict, as_markdown: bool = False) -> None:
    t = Table(
        title="numba compile, seconds, each in a fresh process (cold: empty NUMBA_CACHE_DIR; "
        "warm: the cache the cold run filled)"
    )
    for col in ("cell", "dtype", "path"):
        t.add_column(col)
    for col in ("cold build", "cold epoch 1 / 2", "cold process", "warm build"):
        t.add_column(col, justify="right")
    for col in ("warm process", "imports"):
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
        )
    emit(console, t, as_markdown)
    console.print(
        "build = backend.warm_up(plan) + rnnlab.training.loop.epoch_runner (the T=10 H=32 B=32 "
        "sine plan; char: the stateful char plan); a 1st epoch much slower than the 2nd: "
        "something compiled lazily; process = the whole child process; imports = rnnlab "
        "and numba, warm",
        highlight=False,
    )
    if "run" not in result:
        return
    run = result["run"]
    verdict = {True: "PASS", False: "FAIL", None: f"? (no line containing {READY!r})"}[run["pass"]]
    for kind in ("cold", "warm"):
        r = run[kind]
        console.print(
            f"{run['command']}, {kind} cache: first epoch starts {_s(r['to_first_epoch_s'])} s "
            f"after process start (warmup_seconds {_s(r['warmup_seconds'])}), whole process "
            f"{_s(r['process_s'])} s",
            highlight=False,
        )
    console.print(f"bar: {run['bar']}: {verdict}", highlight=False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cell", action="append", choices=CELLS, help="default: every cell")
    ap.add_argument("--dtype", action="append", choices=DTYPES, help="default: both")
    ap.add_argument("--no-run", action="store_true", help="leave out the `rnnlab run` start")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--child", nargs=2, metavar=("CELL", "DTYPE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    console = console_for(args.json)
    info = machine.describe(with_torch=False)
    warning = machine.idle_warning(info)
    if warning:
        console.print(warning, highlight=False, markup=False)
    result = measure(
        args.dtype or DTYPES,
        lambda m: console.print(m, highlight=False),
        args.cell or CELLS,
        not args.no_run,
    )
    machine.finish(info)
    if args.json:
        print(json.dumps({"machine": info, "compile": result}, indent=2))
        return
    show(console, result, args.markdown)
    for line in machine.header_lines(info):
        console.print(line, highlight=False, markup=False)


if __name__ == "__main__":
    main()
