"""What every executor shares: a job (one run of a sweep), its result, and the interface.

An executor takes jobs and a function to run on each, and yields their results as runs finish,
in any order. It calls ``started(job)`` when a run begins (from any thread). Jobs given as a
list may all be handed out at once; jobs given as any other iterable are taken one at a time,
when a worker is free for the next (and only after the results before it were yielded), so that
a search can make each job from the results so far. Closing the
iterator early (the sweep stops on a failure with ``--fail-fast``, or on Ctrl-C) cancels the
runs that have not begun.
A run that raises is a *result* (status "failed"), never an exception out of the executor; a
worker that dies has its run retried elsewhere at most ``retries`` times, then the run is
reported failed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Pinned per run so that parallel runs do not fight over the cores; set in the environment of a
# worker process before it imports numpy or numba.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class RunJob:
    """One run of a sweep, as a worker needs it: plain data, picklable, no registry."""

    run: str  # the run directory's name inside the sweep directory
    variant: int
    seed: int
    raw: dict[str, Any]  # the experiment tables with the variant's overrides and the seed
    source: str  # the experiment file (absolute), for messages and relative paths
    plugin_files: tuple[str, ...]  # absolute paths of plugin files to load
    sweep_dir: str  # absolute


@dataclass
class RunResult:
    """What became of one run. ``summary`` is the run's summary.json when it got that far."""

    run: str
    variant: int
    seed: int
    status: str  # "finished", "stopped" or "failed"
    summary: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    attempts: int = 1
    previous: bool = False  # finished by an earlier invocation of the same sweep

    @property
    def ok(self) -> bool:
        return self.status in ("finished", "stopped")

    @classmethod
    def died(cls, job: RunJob, attempts: int, detail: str) -> RunResult:
        return cls(
            job.run,
            job.variant,
            job.seed,
            "failed",
            attempts=attempts,
            error=f"the worker running it died {attempts} times ({detail})",
        )


@dataclass(frozen=True)
class ExecutorOptions:
    """What the command line passes to an executor's factory."""

    workers: int | None = None  # processes or cluster size; None: the executor decides
    address: str | None = None  # where a cluster's scheduler is, for engines that have one
    retries: int = DEFAULT_RETRIES  # reruns of a run whose worker died
    extra: dict[str, Any] = field(default_factory=dict)  # engine-specific, from plugins


class Executor(ABC):
    """Runs jobs and yields their results as each finishes."""

    name: str = ""

    @abstractmethod
    def run(
        self,
        fn: Callable[[RunJob], RunResult],
        jobs: Iterable[RunJob],
        started: Callable[[RunJob], None],
    ) -> Iterator[RunResult]:
        """Call ``fn(job)`` for every job (on workers); yield each result as it arrives and call
        ``started(job)`` as each run begins. ``fn`` is a module-level function, so it pickles."""

    def describe(self) -> str:
        """One line for the terminal: which engine, how many workers."""
        return self.name


@dataclass(frozen=True)
class ExecutorSpec:
    """What a plugin's ``register_executors()`` returns: a name and a factory."""

    name: str
    factory: Callable[[ExecutorOptions], Executor]
    description: str = ""
