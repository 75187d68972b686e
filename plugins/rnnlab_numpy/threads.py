"""How many BLAS threads the NumPy backend's matrix products should use for a plan.

The reference backend spends its time in NumPy matrix products, which OpenBLAS (or another
BLAS) splits over its own threads, by default one per core. For the products a recurrence
makes at every step (``[N, H] x [H, G*H]`` at typical sizes, about a million flops) a second
thread gains little on an idle machine and costs a great deal on a busy one: each product
waits for the operating system to schedule the second thread. Measured with
``benchmarks/blas_threads.py`` (2-core Xeon, OpenBLAS 0.3.31):

- under load (1-minute load average 11 on the 2 cores), two threads were slower than one at
  every size tried: about even at 0.3-1 MFLOP per product, 100-400x slower at 4-67 MFLOP (a
  product waited ~50 ms for the second thread's turn), still 0.65x at 2 GFLOP; a copy-like
  epoch (lstm H=64 T=50 B=32) ran 14.6x slower on two threads than on one (7.6x at H=256
  B=128);
- so two threads are chosen only for step products of at least ``TWO_THREAD_FLOPS`` per call
  (``[128, 512] x [512, 2048]`` and up: an lstm with ``H = 512`` at ``B = 128``), which take
  milliseconds on one core, so that a second thread's hand-over is small beside them, and only
  when another core is free as the run starts. (The crossover on an idle machine is lower and
  was not measured here: the machine was never idle; ``train.threads = 2`` forces two.)

``train.threads`` set to n > 0 uses n threads whatever the sizes. Results of one thread
count are the same bytes every time. Between one and two threads, float64 products summed over
many rows (a weight gradient over the T x N rows of a batch) may differ in the last bit, as
OpenBLAS may split such a sum between its threads; the step products do not. Sweeps run their
workers with one BLAS thread, so a run and a sweep's run of the same seed agree to the bit
at typical sizes.
"""

from __future__ import annotations

import os

from rnnlab.plugin import cell_spec

# per-call flops of the step product from which two threads may pay (see the module's text)
TWO_THREAD_FLOPS = 2.0e8


def step_flops(plan) -> float:
    """Flops of one recurrent step's product ``[N, H] x [H, G*H]`` at the plan's batch size
    (``2 N H G H``; G: the cell's gate blocks, 1 for a cell this rnnlab does not know)."""
    m = plan.model
    try:
        gates = cell_spec(m.cell).gates
    except KeyError:  # a plugin's cell: its spec is in the registry, not needed for a size
        gates = 1
    return 2.0 * plan.train.batch_size * m.hidden_size * gates * m.hidden_size


def blas_threads_for(flops: float, asked: int, cores: int, busy: float) -> int:
    """BLAS threads for products of ``flops`` per call: ``asked`` when it is set (> 0);
    else one below ``TWO_THREAD_FLOPS``, and above it one per core not kept busy by others
    (``busy``: cores other processes use now, ``cores``: cores this process may use)."""
    if asked > 0:
        return asked
    if flops < TWO_THREAD_FLOPS or cores < 2:
        return 1
    spare = cores - 1 - busy  # cores beyond the one this run keeps busy
    return max(1, min(cores, 1 + int(spare + 0.5)))


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_elsewhere(proc: str = "/proc") -> float:
    """Cores other tasks keep busy now: the tasks running or waiting for a core
    (``/proc/loadavg``'s fourth field, an instant count) less the caller; elsewhere the
    one-minute load average less one. (``proc``: where /proc is, for tests.)"""
    try:
        with open(f"{proc}/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        return float(max(0, running - 1))
    except (OSError, ValueError, IndexError):
        try:
            return max(0.0, os.getloadavg()[0] - 1)
        except (AttributeError, OSError):
            return float("inf")


def blas_threads(plan) -> int:
    """The BLAS threads for ``plan`` on this machine now (``train.threads`` when set)."""
    asked = getattr(plan.train, "threads", 0)
    flops = step_flops(plan)
    if asked or flops < TWO_THREAD_FLOPS:  # no need to look at the machine
        return blas_threads_for(flops, asked, 1, 0.0)
    return blas_threads_for(flops, asked, usable_cores(), busy_elsewhere())
