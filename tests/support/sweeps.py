"""Tiny sweep files for the sweep tests: sine runs of 2 epochs on 120 points."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from rnnlab.executors import THREAD_ENV, RunJob, RunResult

BASE = """
[experiment]
name = "tiny"
{plugins}
[task]
name = "sine"
points = 120
window = 5

[model]
hidden_size = 4

[train]
epochs = 2
batch_size = 16
"""

# A plugin that kills the process running the run of seed `seed`, at its first epoch, while
# the marker file beside it exists (it deletes the marker first, unless `always`).
KILLER = """
import os
import signal
from pathlib import Path

from rnnlab.hookspecs import hookimpl

MARKER = Path(__file__).with_name("kill-marker")


@hookimpl
def on_epoch_end(run, epoch):
    if run.experiment.experiment.seed != {seed} or not MARKER.exists():
        return None
    if not {always}:
        try:
            MARKER.unlink()
        except FileNotFoundError:
            return None
    os.kill(os.getpid(), signal.SIGKILL)
"""


def write_sweep(folder: Path, sweep: str, *, plugins: str = "", name: str = "tiny.toml") -> Path:
    path = folder / name
    text = BASE.format(plugins=plugins) + "\n[sweep]\n" + textwrap.dedent(sweep)
    path.write_text(text)
    return path


def write_killer(folder: Path, *, seed: int, always: bool = False) -> Path:
    (folder / "kill-marker").write_text("")
    path = folder / "killer.py"
    path.write_text(KILLER.format(seed=seed, always=always))
    return path


def run_record(run_dir: Path) -> dict:
    """What must match bit for bit between executors: metrics, parameters, epoch losses."""
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    with np.load(run_dir / "params.npz") as data:
        params = {k: data[k].tobytes() for k in data.files}
    epochs = [
        {k: v for k, v in json.loads(line).items() if k != "seconds"}
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    return {
        "status": summary["status"],
        "metrics": summary["metrics"],
        "params": params,
        "epochs": epochs,
    }


def report_environment(job: RunJob) -> RunResult:
    """A job function (run on a worker) that reports the thread variables it sees."""
    names = [*THREAD_ENV, "OPENBLAS_CORETYPE"]
    return RunResult(
        job.run, job.variant, job.seed, "finished", summary={k: os.environ.get(k) for k in names}
    )


def dummy_jobs(n: int) -> list[RunJob]:
    return [RunJob(f"r{i}", 0, i, {}, "", (), "") for i in range(n)]


# A plugin that interrupts the run of seed `seed` as Ctrl-C would (SIGINT to its own process)
# after its second epoch, once: the run stops with a checkpoint.
INTERRUPTER = """
import os
import signal
from pathlib import Path

from rnnlab.hookspecs import hookimpl

MARKER = Path(__file__).with_name("interrupt-marker")


@hookimpl
def on_epoch_end(run, epoch):
    if run.experiment.experiment.seed == {seed} and epoch == 2 and MARKER.exists():
        MARKER.unlink()
        os.kill(os.getpid(), signal.SIGINT)
"""


def write_interrupter(folder: Path, *, seed: int) -> Path:
    (folder / "interrupt-marker").write_text("")
    path = folder / "interrupter.py"
    path.write_text(INTERRUPTER.format(seed=seed))
    return path
