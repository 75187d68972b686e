"""What runs on a worker for one trial: each seed's run, reporting to the pruner as it goes.

A trial is one point of the search space run once per seed, each run an ordinary run directory
(``t0007_seed-1``: exactly what `rnnlab run` writes) in the search directory. Its value is the
mean of the metric over the seeds. The trial's record (``trials/t0007.json``: state, value,
per-seed values, parameters, runs) is written by the worker when the trial ends, before the
driver hears of it, so a trial that ended is never lost with the driver. Run again (a worker
died, the search was interrupted), a trial continues: finished runs are kept, an interrupted
one continues from its checkpoint (the sweep worker's rules).

Pruning: with an epoch pruner (median, asha, hyperband) every epoch reports the mean over the
seeds run so far of the epoch's value (the running seed's epoch and the same epoch of the
seeds before it) at step ``seed index x train.epochs + epoch``, and the run stops when the
pruner says so; with wilcoxon each seed's final value is reported at step ``seed index``.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunInterrupted
from ..executors.base import RunJob, RunResult
from ..hookspecs import hookimpl
from ..sweep.worker import run_job
from .space import SearchSettings, settings_from_dict

TRIALS = "trials"
REPORTER = "rnnlab.search"
PRUNED = "pruned by the search"  # how a pruned run's summary begins its stop_reason
STATUS = {"complete": "finished", "pruned": "stopped", "failed": "failed"}


@dataclass(frozen=True)
class TrialJob(RunJob):
    """One trial: ``raw`` has the trial's parameters applied (its seeds are set per run)."""

    number: int
    trial_id: int
    params: dict[str, Any]
    settings: dict[str, Any]  # SearchSettings.to_dict()
    study: str  # the study's name in its storage


def trial_name(number: int) -> str:
    return f"t{number:04d}"


def run_name(number: int, seed: int) -> str:
    return f"{trial_name(number)}_seed-{seed}"


def record_path(directory: Path, number: int) -> Path:
    return Path(directory) / TRIALS / f"{trial_name(number)}.json"


def read_record(directory: Path, number: int) -> dict | None:
    try:
        return json.loads(record_path(directory, number).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_record(directory: Path, record: dict) -> None:
    path = record_path(directory, record["number"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def as_result(job: RunJob, record: dict) -> RunResult:
    return RunResult(
        job.run,
        job.variant,
        job.seed,
        STATUS[record["state"]],
        summary=record,
        error=record.get("error"),
    )


class EpochReporter:
    """A plugin object in the trial's registry: reports each epoch to the pruner, and stops the
    run (``on_epoch_end`` returns True) when the pruner says so."""

    def __init__(self, trial, key: str, index: int, before: list[list[float]]):
        self.trial, self.key, self.index, self.before = trial, key, index, before

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        here = float(metrics[self.key])
        earlier = [curve[min(epoch, len(curve)) - 1] for curve in self.before if curve]
        step = self.index * run.experiment.train.epochs + epoch
        with warnings.catch_warnings():  # a resumed run reports its last epochs again
            warnings.simplefilter("ignore")
            self.trial.report(float(np.mean([*earlier, here])), step)
        if self.trial.should_prune():
            run.stop_reason = f"{PRUNED} after epoch {epoch} (step {step})"
            return True
        return None


def curve(run_dir: Path, key: str) -> list[float]:
    """The run's per-epoch values of ``key`` (metrics.jsonl)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [float(json.loads(line)[key]) for line in lines if line.strip()]


def run_trial(job: TrialJob) -> RunResult:
    """Run the trial's seeds (or finish them), write its record, and return it."""
    directory = Path(job.sweep_dir)
    done = read_record(directory, job.number)
    if done is not None:  # ended before; the driver had not heard of it
        return as_result(job, done)
    from .study import open_study, optuna

    settings = settings_from_dict(job.settings)
    study = open_study(directory, settings, job.study, create=False)
    trial = optuna().trial.Trial(study, job.trial_id)
    try:
        record = _seeds(job, settings, trial, directory)
    except RunInterrupted as exc:  # Ctrl-C: the run kept a checkpoint; the trial goes on later
        return RunResult(job.run, job.variant, job.seed, "interrupted", error=str(exc))
    write_record(directory, record)
    return as_result(job, record)


def _seeds(job: TrialJob, settings: SearchSettings, trial, directory: Path) -> dict:
    split, metric = settings.metric.split(".")
    record = {
        "number": job.number,
        "params": job.params,
        "state": "complete",
        "value": None,
        "values": {},
        "runs": [],
        "pruned_at": None,
        "error": None,
    }
    curves: list[list[float]] = []
    for index, seed in enumerate(settings.seeds):
        raw = copy.deepcopy(job.raw)
        raw.setdefault("experiment", {})["seed"] = seed
        name = run_name(job.number, seed)
        seed_job = RunJob(name, job.variant, seed, raw, job.source, job.plugin_files, job.sweep_dir)
        plugins = []
        if settings.epoch_key is not None:
            plugins = [(REPORTER, EpochReporter(trial, settings.epoch_key, index, curves))]
        result = run_job(seed_job, extra_plugins=plugins)
        record["runs"].append({"run": name, "seed": seed, "status": result.status})
        if not result.ok:
            record.update(state="failed", error=result.error)
            return record
        reason = (result.summary or {}).get("stop_reason") or ""
        if result.status == "stopped" and reason.startswith(PRUNED):
            record.update(state="pruned", pruned_at=reason)
            return record
        recorded = result.summary.get("metrics", {}).get(split, {})
        if metric not in recorded:
            record.update(
                state="failed",
                error=f"[search] metric = {settings.metric!r}: the runs record "
                f"{', '.join(f'{split}.{m}' for m in recorded)}",
            )
            return record
        record["values"][str(seed)] = float(recorded[metric])
        if settings.epoch_key is not None:
            curves.append(curve(directory / name, settings.epoch_key))
        if settings.pruner == "wilcoxon":
            trial.report(float(recorded[metric]), index)
            if index + 1 < len(settings.seeds) and trial.should_prune():
                record.update(state="pruned", pruned_at=f"{PRUNED} after seed {seed}")
                return record
    record["value"] = float(np.mean(list(record["values"].values())))
    return record
