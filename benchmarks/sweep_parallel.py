"""Wall time of one sweep of 8 short sine runs: serially, then on 2 local worker processes.

    python benchmarks/sweep_parallel.py [--epochs 40] [--repeats 3] [--workers 2]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "bench.toml"
        path.write_text(SWEEP.format(epochs=args.epochs))
        plan = build_plan(read_toml(path), Registry(), source=path)
        ratios = []
        for k in range(args.repeats):
            serial, serial_cpu = timed(plan, SerialExecutor(), root / f"serial-{k}")
            parallel, parallel_cpu = timed(plan, LocalExecutor(args.workers), root / f"local-{k}")
            ratios.append(parallel / serial)
            print(
                f"repeat {k + 1}: serial {serial:.2f} s (cpu {serial_cpu:.2f} s), "
                f"{args.workers} processes {parallel:.2f} s (cpu {parallel_cpu:.2f} s), "
                f"ratio {parallel / serial:.3f}; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print(
        f"median ratio (parallel / serial) over {args.repeats} repeats: "
        f"{statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":  # the worker processes are spawned: they import this file again
    main()
