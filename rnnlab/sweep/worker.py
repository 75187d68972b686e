"""What runs on a worker for one job: build the experiment, train it into its run directory.

Everything a worker needs is in the job (plain data), so any process on any machine that has
rnnlab and the plugins installed, and sees the sweep directory, can run it. Results are written
by the worker into the run directory as the run goes (exactly what `rnnlab run` writes), so a
finished run is on disk even if the client that started the sweep is gone.
"""

from __future__ import annotations

import copy
import os
import shutil
import traceback
from contextlib import nullcontext
from pathlib import Path

from ..errors import RnnlabError
from ..executors.base import RunJob, RunResult
from ..experiment.config import Experiment, build_experiment
from ..registry.failures import plugin_error
from ..registry.manager import Registry
from ..store.lock import RunLock, RunLocked
from ..store.rundir import CHECKPOINT, RunDir
from ..training.run import resume_experiment, run_experiment
from .directory import DONE, FAILED, MISSING, run_state


def run_job(job: RunJob, extra_plugins=()) -> RunResult:
    """Run one job to the end; a run that raises comes back as a failed result.
    ``extra_plugins`` are ``(name, object)`` pairs registered beside the job's plugin files
    (a search's reporter of each epoch to its pruner)."""
    path = Path(job.sweep_dir) / job.run
    exp = registry = None
    try:
        registry = Registry([Path(f) for f in job.plugin_files])
        for name, plugin in extra_plugins:
            registry.add_module(plugin, name, source="built-in")
        exp = build_experiment(copy.deepcopy(job.raw), registry, source=Path(job.source))
        return _result(job, train_into(path, exp, registry))
    except RunLocked as exc:  # someone else writes this run: leave it alone
        return RunResult(job.run, job.variant, job.seed, "failed", error=str(exc))
    except (Exception, SystemExit) as exc:  # an exit in plugin code fails this run only
        failure = plugin_error(exc, registry)
        error = str(failure) if failure is not None else f"{type(exc).__name__}: {exc}"
        _record_failure(path, job, exp, error)
        return RunResult(
            job.run, job.variant, job.seed, "failed", error=error, traceback=traceback.format_exc()
        )


def train_into(path: Path, exp: Experiment, registry) -> dict:
    """Bring the run directory ``path`` to its end and return its summary: a finished run as it
    is (an earlier attempt whose worker died before reporting), a missing one run, a failed one
    run again from nothing, an interrupted one continued. Raises RunLocked when another process
    holds it, and whatever the run raises."""
    # hold an existing run while deciding what to do with it: a user may be resuming it
    with RunLock(path) if path.exists() else nullcontext():
        state, summary = run_state(path)
        if state == DONE:
            return summary
        if state == MISSING:
            return run_experiment(exp, registry, out_root=path.parent, run_name=path.name)[0]
        if state == FAILED:  # an earlier invocation failed: start again from nothing
            discard(path)
            return run_experiment(exp, registry, out_root=path.parent, run_name=path.name)[0]
        return continue_interrupted(path, exp, registry)[0]


def continue_interrupted(path: Path, exp: Experiment, registry) -> tuple[dict, RunDir]:
    """Carry on a run that started and never ended (its worker died, or Ctrl-C): from its
    checkpoint when it has one that can be resumed, otherwise again from nothing."""
    if (path / CHECKPOINT).is_file():
        try:
            return resume_experiment(path, registry, experiment=exp)
        except RnnlabError:  # an unreadable checkpoint, or data that changed: start again
            pass
    discard(path)
    return run_experiment(exp, registry, out_root=path.parent, run_name=path.name)


def discard(path: Path) -> None:
    """Remove a run directory this process holds: renamed first, so that a process waiting
    for its lock finds it gone rather than a half-removed run."""
    trash = path.with_name(f".{path.name}.discarded-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _result(job: RunJob, summary: dict) -> RunResult:
    return RunResult(
        job.run,
        job.variant,
        job.seed,
        summary["status"],
        summary=summary,
        error=summary.get("error"),
    )


def _record_failure(path: Path, job: RunJob, exp: Experiment | None, error: str) -> None:
    """A run that failed before run_experiment made its directory still gets one, so the
    sweep directory shows every failure; one that failed later already recorded it."""
    if (path / "summary.json").exists():
        return
    try:
        run_dir = RunDir(path)
        path.mkdir(parents=True, exist_ok=True)
        run_dir.write_config(exp.to_dict() if exp is not None else job.raw)
        run_dir.write_summary(
            {"status": "failed", "error": error, "seed": job.seed, "source": job.source}
        )
    except (OSError, RnnlabError):  # a full disk: the result sent back still carries the error
        pass
