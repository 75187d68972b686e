"""Run a search: rnnlab asks the study for each trial's point and tells it each result (Optuna's
ask-and-tell), and an executor runs the trials, a new one as soon as a worker is free (never
in batches).

Resuming: a trial the study still lists as running when a search starts was left by an earlier
invocation (interrupted, or its driver died). If its worker wrote its record, the study is told
that; otherwise the trial runs again with its parameters, continuing its runs. The search then
asks new trials until ``trials`` of them are complete or pruned. A failed trial does not count;
after as many failures in one invocation as the target it stops asking.

Ctrl-C (or SIGTERM) asks no new trial; trials in flight finish or, when their runs got the
signal too (a terminal's Ctrl-C reaches every worker), stop with a checkpoint and continue when
the same command is run again. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from ..executors.base import Executor, RunResult
from ..sweep.plan import _apply
from ..training.interrupt import graceful_stop
from .directory import prepare_directory, search_lock
from .plan import SearchPlan
from .study import distributions, open_study, optuna, sampler_for
from .trial import TrialJob, as_result, read_record, run_trial, trial_name

COUNTED = ("COMPLETE", "PRUNED")


@dataclass
class SearchOutcome:
    plan: SearchPlan
    directory: Path
    executor: str
    target: int
    study: object
    results: list[RunResult] = field(default_factory=list)  # trials that ended in this call
    resumed: int = 0  # trials left running by an earlier invocation, carried on
    interrupted: bool = False
    gave_up: bool = False  # too many failures

    @property
    def counted(self) -> int:
        return count(self.study)


class NoDisplay:
    def begin(self, outcome: SearchOutcome, done: int) -> None: ...
    def started(self, job) -> None: ...
    def finished(self, result: RunResult) -> None: ...


def count(study) -> int:
    states = optuna().trial.TrialState
    wanted = (states.COMPLETE, states.PRUNED)
    return len(study.get_trials(deepcopy=False, states=wanted))


def tell(study, result: RunResult) -> None:
    """Tell the study how the trial ``result`` ended (its number is ``result.variant``)."""
    states = optuna().trial.TrialState
    record = result.summary or {}
    if result.status == "finished":
        study.tell(result.variant, record["value"], skip_if_finished=True)
    elif result.status == "stopped":
        study.tell(result.variant, state=states.PRUNED, skip_if_finished=True)
    else:
        study.tell(result.variant, state=states.FAIL, skip_if_finished=True)


def run_search(
    plan: SearchPlan, executor: Executor, *, directory: Path, more: int = 0, display=None
) -> SearchOutcome:
    display = display or NoDisplay()
    directory = Path(directory).resolve()
    with search_lock(directory):
        target = prepare_directory(directory, plan, more)
        study = open_study(directory, plan.settings, plan.name, create=True)
        outcome = SearchOutcome(plan, directory, executor.describe(), target, study)
        with graceful_stop() as stop:
            _run(outcome, executor, display, stop)
    return outcome


def _job(outcome: SearchOutcome, number: int, trial_id: int, params: dict) -> TrialJob:
    plan = outcome.plan
    return TrialJob(
        trial_name(number),
        number,
        plan.settings.seeds[0],
        _apply(plan.base, params),
        str(plan.source),
        plan.plugin_files,
        str(outcome.directory),
        number,
        trial_id,
        dict(params),
        plan.settings.to_dict(),
        plan.name,
    )


def _leftovers(outcome: SearchOutcome) -> list[TrialJob]:
    """Trials an earlier invocation left running: told from their records, or run again."""
    study, states = outcome.study, optuna().trial.TrialState
    again = []
    for frozen in study.get_trials(deepcopy=False, states=(states.RUNNING,)):
        record = read_record(outcome.directory, frozen.number)
        job = _job(outcome, frozen.number, frozen._trial_id, frozen.params)
        if record is not None:
            tell(study, as_result(job, record))
        else:
            again.append(job)
    outcome.resumed = len(again)
    return again


def _run(outcome: SearchOutcome, executor: Executor, display, stop) -> None:
    study, settings = outcome.study, outcome.plan.settings
    space = distributions(settings.space)
    running: set[int] = set()
    failures = 0
    leftovers = _leftovers(outcome)
    display.begin(outcome, count(study))

    def jobs():
        nonlocal failures
        for job in leftovers:
            if stop.requested or outcome.interrupted:
                return
            running.add(job.number)
            yield job
        while not (stop.requested or outcome.interrupted) and failures < outcome.target:
            if count(study) + len(running) >= outcome.target:
                return
            number = len(study.get_trials(deepcopy=False))
            study.sampler = sampler_for(settings, number)
            trial = study.ask(copy.deepcopy(space))
            running.add(trial.number)
            yield _job(outcome, trial.number, trial._trial_id, trial.params)

    while True:
        before = failures
        results = executor.run(run_trial, jobs(), display.started)
        try:
            for result in results:
                running.discard(result.variant)
                if result.status == "interrupted":
                    outcome.interrupted = True  # told nothing: the trial carries on next time
                else:
                    tell(study, result)
                    failures += not result.ok
                    outcome.results.append(result)
                display.finished(result)
        finally:
            results.close()
        outcome.interrupted = outcome.interrupted or stop.requested
        if outcome.interrupted or count(study) >= outcome.target:
            return
        if failures >= outcome.target or failures == before:
            outcome.gave_up = failures >= outcome.target
            return
