"""Whether a run that says "running" still runs: its summary is written when it starts and
rewritten when it ends, so a process killed in between (SIGKILL, out of memory, a power cut)
leaves "running" behind. The run directory's lock (:mod:`rnnlab.store.lock`) tells: only a live
writer holds it."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

from ..errors import RnnlabError
from .checkpoint import DAMAGED
from .lock import holder
from .rundir import CHECKPOINT, CONFIG, METRICS, PARAMS, SUMMARY


def checkpoint_progress(path: Path) -> str | None:
    """How far the run's checkpoint is ("3 epochs", "3 epochs and 5 batches"), read from its
    small metadata member only; None when there is none or it cannot be read."""
    if not (Path(path) / CHECKPOINT).is_file():
        return None
    try:
        with zipfile.ZipFile(Path(path) / CHECKPOINT) as z, z.open("meta.npy") as f:
            raw = f.read()
        meta = json.loads(raw[raw.index(b"\n", 10) + 1 :].decode("utf-8"))  # after the .npy header
        epochs = int(meta["epoch"])
        position = meta.get("position") or {}
        batches = len(position.get("losses", [])) if isinstance(position, dict) else 0
    except DAMAGED:
        return None
    done = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    if batches:
        done += f" and {batches} batch{'es' if batches != 1 else ''}"
    return done


def died(path: Path) -> str | None:
    """For a run whose summary says "running": None while its writer lives (or when this host
    cannot tell), else why it is not running and how to go on."""
    alive, record = holder(path)
    if alive is not False:
        return None
    gone = "the process that ran it is gone"
    if record is not None and record.pid:
        gone += f" ({record.describe()})"
    progress = checkpoint_progress(path)
    if progress is None:
        return f"{gone}; it left no readable checkpoint: start it again with rnnlab run"
    return f"{gone}; last checkpoint after {progress}; resume with: rnnlab resume {path}"


def resumable_summary(run_dir, exp) -> dict:
    """The summary a resume goes on from: the run's own record (a new one when it has none),
    with what the experiment decides (its name, task, backend, cell, seed) taken from the
    experiment, and counters that are not numbers (a damaged file) started again. A summary
    that cannot be read, or is not a table, is refused."""
    for name in (CONFIG, METRICS, SUMMARY, PARAMS, CHECKPOINT):  # before anything is written
        if (run_dir.path / name).exists() and not (run_dir.path / name).is_file():
            raise RnnlabError(
                f"{run_dir.path / name}: not a file; the run cannot be written "
                f"until it is one again (or is gone)"
            )
    path = run_dir.path / SUMMARY
    summary = run_dir.read_summary() if path.exists() else {}
    summary.update(
        experiment=exp.experiment.name,
        task=exp.task.name,
        backend=exp.train.backend,
        cell=exp.model.cell,
        seed=exp.experiment.seed,
    )
    for key in ("wall_seconds", "cpu_seconds", "resumed"):
        value = summary.get(key)
        if value is not None and (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value < 0
        ):
            summary.pop(key)
    return summary
