"""Run a sweep: prepare its directory, skip what is done, hand the rest to an executor, and
collect each result as it arrives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..executors.base import Executor, RunResult
from ..store.liveness import died
from .directory import (
    DONE,
    make_directory,
    prepare_directory,
    resolve_folder,
    run_state,
    sweep_lock,
)
from .plan import SweepPlan
from .worker import run_job


@dataclass
class SweepOutcome:
    plan: SweepPlan
    directory: Path
    executor: str
    results: dict[str, RunResult]  # run name -> result, for the runs that have one
    stopped_early: bool = False  # --fail-fast stopped it after a failure

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results.values() if not r.ok]


class NoDisplay:
    """The display interface, doing nothing (for library use and tests)."""

    def begin(self, total: int, previous: int, executor: str, directory: Path) -> None: ...
    def started(self, job) -> None: ...
    def finished(self, result: RunResult) -> None: ...


def found_dead(path: Path) -> str | None:
    """Why a run that says "running" is not (its process died), or None."""
    _, summary = run_state(path)
    if summary is None or summary.get("status") != "running":
        return None
    return died(path)


def run_sweep(
    plan: SweepPlan, executor: Executor, *, out_root: Path, fail_fast: bool = False, display=None
) -> SweepOutcome:
    """Run every run of ``plan`` not already finished in ``out_root/<name>``."""
    display = display or NoDisplay()
    directory = make_directory(resolve_folder(out_root) / plan.name)
    with sweep_lock(directory):
        prepare_directory(directory, plan)
        return _run(plan, executor, directory, fail_fast, display)


def _run(plan, executor, directory, fail_fast, display) -> SweepOutcome:
    results, todo = {}, []
    for job in plan.jobs(directory):
        state, summary = run_state(directory / job.run)
        if state == DONE:
            results[job.run] = RunResult(
                job.run, job.variant, job.seed, summary["status"], summary=summary, previous=True
            )
        else:
            todo.append(job)
    outcome = SweepOutcome(plan, directory, executor.describe(), results)
    display.begin(len(plan.runs), len(results), outcome.executor, directory)
    note = getattr(display, "note", None)
    for job in todo if note is not None else ():
        why = found_dead(directory / job.run)
        if why:
            note(f"{job.run} died: {why.split('; resume with')[0]}; resuming it")
    if not todo:
        return outcome
    results_iter = executor.run(run_job, todo, display.started)
    try:
        for result in results_iter:
            results[result.run] = result
            display.finished(result)
            if fail_fast and not result.ok:
                outcome.stopped_early = True
                break
    finally:
        results_iter.close()  # cancels what has not started
    order = {r.run: i for i, r in enumerate(plan.runs)}
    outcome.results = dict(sorted(results.items(), key=lambda kv: order[kv[0]]))
    return outcome
