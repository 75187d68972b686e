"""Wall time of one sweep of 8 short sine runs: serially, then on 2 local worker processes.

    python benchmarks/sweep_parallel.py [--epochs 40] [--repeats 3] [--workers 2]
    python benchmarks/sweep_parallel.py --repeats 3 --write-docs   # into docs/results/speed.md

Both sweeps are the same 8 runs (one variant, seeds 0-7) written to fresh folders; the figure
is the ratio of the two wall times (process start-up included: it is what a user waits for).
Each repeat times serial then parallel; the median ratio is reported, with the CPU seconds each
used (this process plus its worker processes) and the load average. On a machine shared with
other work the wall-time figure is noisy: with the kernel's autogroup scheduling, a busy
machine gives this command a share of the cores however many processes it starts.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import backends
import machine
import results_page
from rich.table import Table

from rnnlab.executors.local import LocalExecutor
from rnnlab.executors.serial import SerialExecutor
from rnnlab.experiment.config import read_toml
from rnnlab.registry.manager import Registry
from rnnlab.sweep import build_plan, run_sweep

SWEEP = """
[experiment]
name = "bench"
[task]
name = "sine"
points = 1000
window = 10
[model]
hidden_size = 32
[train]
epochs = {epochs}
batch_size = 32
[sweep]
seeds = [0, 1, 2, 3, 4, 5, 6, 7]
"""


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(plan, executor, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one sweep."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    outcome = run_sweep(plan, executor, out_root=out)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if outcome.failed or len(outcome.results) != 8:
        raise SystemExit(f"sweep did not finish: {outcome.failed}")
    return seconds, cpu


def table(repeats: list[dict], workers: int) -> Table:
    t = Table(
        title=f"one sweep of 8 sine runs (numpy backend), serially and on {workers} local "
        f"worker processes: wall and CPU seconds"
    )
    for col in ("repeat", "serial", f"{workers} processes", "parallel / serial", "load"):
        t.add_column(col, justify="left" if col == "repeat" else "right")
    for k, r in enumerate(repeats, 1):
        t.add_row(
            str(k),
            f"{r['serial']:.2f} (CPU {r['serial_cpu']:.2f})",
            f"{r['parallel']:.2f} (CPU {r['parallel_cpu']:.2f})",
            f"{r['parallel'] / r['serial']:.3f}",
            f"{r['load']:.1f}",
        )
    ratios = [r["parallel"] / r["serial"] for r in repeats]
    t.add_row("median", "", "", f"{statistics.median(ratios):.3f}", "")
    return t


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    results_page.add_write_docs(parser, "sweeps")
    args = parser.parse_args(argv)
    console = backends.console_for(False)
    log = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    info = results_page.record(machine.describe(with_torch=False))
    if machine.idle_warning(info):
        log(machine.idle_warning(info))
    repeats = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "bench.toml"
        path.write_text(SWEEP.format(epochs=args.epochs))
        plan = build_plan(read_toml(path), Registry(), source=path)
        for k in range(args.repeats):
            serial, serial_cpu = timed(plan, SerialExecutor(), root / f"serial-{k}")
            parallel, parallel_cpu = timed(plan, LocalExecutor(args.workers), root / f"local-{k}")
            repeats.append(
                {
                    "serial": serial,
                    "serial_cpu": serial_cpu,
                    "parallel": parallel,
                    "parallel_cpu": parallel_cpu,
                    "load": os.getloadavg()[0],
                }
            )
            log(f"repeat {k + 1}/{args.repeats} done")
    machine.finish(info)
    t = table(repeats, args.workers)
    note = (
        f"{args.epochs} epochs per run; CPU: this process and its worker processes; load: the "
        "1-minute load average after the repeat"
    )
    block = "sweeps" if args.write_docs else None
    box = [f"**Repeats:** {args.repeats}, each serial then parallel"]
    backends.show_and_write(console, t, [note], info, args.markdown, block, box)


if __name__ == "__main__":  # the worker processes are spawned: they import this file again
    main()
