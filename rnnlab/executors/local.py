"""Runs in local worker processes, one run per process, BLAS and numba threads pinned to one.

Jobs are taken from their iterable lazily, one each time a worker is free, so a caller may
hand in a generator that makes the next job from the results so far (an adaptive search).
Processes are started with 'spawn', in an environment that pins the thread pools (the variables
must be set before numpy or numba is imported, and a spawned process imports them afresh).

A worker that dies (killed, out of memory, a crash in native code) breaks the whole process
pool, and every run in flight fails with it, so the one to blame is unknown. Those runs are
then run again one at a time; a run whose process dies while it runs alone is charged with an
attempt, and after ``1 + retries`` attempts it is reported failed. The sweep goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Sized
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from .base import DEFAULT_RETRIES, THREAD_ENV, Executor, RunResult


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def pinned_threads():
    """Set THREAD_ENV in this process's environment (inherited by processes spawned now), and
    put the previous values back afterwards. This process's own numpy is already loaded, so
    its thread pools are unaffected."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update(THREAD_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


PARENT_POLL_SECONDS = 1.0
STOP_GRACE_SECONDS = 60.0  # for the run in flight to save its checkpoint and its summary


def start_worker(parent: int) -> None:
    """A worker process's set-up: Ctrl-C is left to the sweep, the parent is watched."""
    ignore_interrupts()
    watch_parent(parent)


def ignore_interrupts() -> None:
    """In a worker: a Ctrl-C at the terminal (SIGINT to the whole process group) stops the run
    being trained, which catches it (a checkpoint, then RunInterrupted), and leaves an idle
    worker alone: its death would break the pool and fail the other runs in flight. The
    process that started the workers decides what happens next."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def watch_parent(parent: int) -> None:
    """In a worker: end this process when the sweep that started it is gone (killed, even by
    SIGKILL, which no handler sees). A thread notices that the parent changed; the run in
    flight is then stopped as SIGTERM stops a run (checkpoint, summary "interrupted", resumed
    by the next `rnnlab sweep`), and the process exits."""
    if os.getppid() != parent:  # already orphaned
        os._exit(1)
    threading.Thread(target=_orphaned, args=(parent,), name="rnnlab-parent", daemon=True).start()


_orphan = threading.Event()  # set in a worker whose parent is gone


def _orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    _orphan.set()
    os.kill(os.getpid(), signal.SIGTERM)  # idle: ends the process; running: a graceful stop
    time.sleep(STOP_GRACE_SECONDS)  # plugin code that never returns: end it anyway
    os._exit(1)


def _call(fn, job):
    """``fn(job)`` on a worker; an orphaned worker exits once the run has stopped (its result
    is on disk; nobody is left to receive it)."""
    try:
        return fn(job)
    finally:
        if _orphan.is_set():
            os._exit(1)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int | None = None, retries: int = DEFAULT_RETRIES):
        self.workers = workers or available_cores()
        self.retries = retries

    def describe(self) -> str:
        return f"local processes ({self.workers})"

    def _pool(self, n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(os.getpid(),),
        )

    def run(self, fn, jobs, started):
        source = iter(jobs)  # taken lazily: the next job only when a worker is free for it
        left = len(jobs) if isinstance(jobs, Sized) else None  # None: an open-ended stream
        exhausted = False
        suspects = deque()  # in flight when a worker died: rerun alone to find the culprit
        charged = Counter()  # run -> deaths of its worker while it ran alone
        in_flight = {}  # future -> job

        def size(pending: int) -> int:
            return max(1, self.workers if left is None else min(self.workers, pending))

        with pinned_threads():
            pool = self._pool(size(left or 0))
            try:
                while not exhausted or suspects or in_flight:
                    if suspects:
                        if not in_flight:
                            job = suspects.popleft()
                            in_flight[pool.submit(_call, fn, job)] = job
                            started(job)
                    else:
                        while not exhausted and len(in_flight) < self.workers:
                            job = next(source, None)
                            if job is None:
                                exhausted = True
                                break
                            left = None if left is None else left - 1
                            in_flight[pool.submit(_call, fn, job)] = job
                            started(job)
                    if not in_flight:
                        continue
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                        done, _ = wait(in_flight, return_when=ALL_COMPLETED)  # all fail now
                    crashed = []
                    for future in done:
                        job = in_flight.pop(future)
                        if isinstance(future.exception(), BrokenProcessPool):
                            crashed.append(job)
                            continue
                        result = future.result()
                        result.attempts = charged[job.run] + 1
                        yield result
                    if not crashed:
                        continue
                    pool.shutdown(wait=True)
                    pool = self._pool(size((left or 0) + len(crashed)))
                    if len(crashed) > 1:
                        suspects.extend(crashed)
                        continue
                    job = crashed[0]  # it ran alone: its own process died
                    charged[job.run] += 1
                    if charged[job.run] > self.retries:
                        yield RunResult.died(job, charged[job.run], "its process exited")
                    else:
                        suspects.appendleft(job)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
