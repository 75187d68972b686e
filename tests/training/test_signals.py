"""Real `rnnlab run` processes stopped by SIGINT, SIGTERM and SIGKILL, and killed while writing
a checkpoint; resumed, they end exactly like an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab.store.rundir import RunDir
from tests.support.tiny_runs import TINY, assert_same_outcome, write_tiny

pytestmark = pytest.mark.slow
EPOCHS = 60  # long enough that the run is far from done when the signal arrives
SETS = ["--set", f"train.epochs={EPOCHS}"]
RNNLAB = [sys.executable, "-c", "from rnnlab.cli import main; main()"]

# Writes the first half of the third checkpoint, says so, then waits to be killed. It patches the
# module from outside: production code has no test hook.
SLOW_WRITER = """
import io, os, sys, time
import rnnlab.store.checkpoint as checkpoint
real, calls = checkpoint.save, [0]
def save(ckpt, f):
    calls[0] += 1
    if calls[0] < 3:
        return real(ckpt, f)
    buf = io.BytesIO()
    real(ckpt, buf)
    f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
    f.flush()
    os.fsync(f.fileno())
    open(sys.argv[1], "w").close()
    time.sleep(120)
checkpoint.save = save
from rnnlab.cli import main
main(sys.argv[2:])
"""


def start(tmp_path: Path, out: str, *extra: str) -> subprocess.Popen:
    config = write_tiny(tmp_path, TINY)
    return subprocess.Popen(
        [*RNNLAB, "run", str(config), *SETS, "--out", str(tmp_path / out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def wait_for(predicate, proc: subprocess.Popen, what: str, limit: float = 60.0) -> None:
    """Poll until ``predicate()``; a generous limit only turns a hang into a failure."""
    t0 = time.monotonic()
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() - t0 < limit, f"no {what} after {limit} s"
        time.sleep(0.02)


def run_dir_of(tmp_path: Path, out: str) -> Path:
    (path,) = (tmp_path / out).iterdir()
    return path


def epochs_done(tmp_path: Path, out: str) -> int:
    folder = tmp_path / out
    runs = list(folder.iterdir()) if folder.exists() else []
    if not runs or not (runs[0] / "metrics.jsonl").exists():
        return 0
    return len((runs[0] / "metrics.jsonl").read_text().splitlines())


def checkpointed_epochs(tmp_path: Path, out: str) -> int:
    """Epochs done in the checkpoint on disk (0 while there is none). Checkpoints are written
    behind training, so the file may lag metrics.jsonl by an epoch or more."""
    folder = tmp_path / out
    runs = list(folder.iterdir()) if folder.exists() else []
    if not runs or not (runs[0] / "checkpoint.npz").exists():
        return 0
    return RunDir(runs[0]).load_checkpoint().state.epoch


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reference")
    proc = start(tmp, "runs")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return run_dir_of(tmp, "runs")


def resume(path: Path, *how: str) -> subprocess.CompletedProcess:
    args = [*RNNLAB, "resume", str(path)] if not how else [*RNNLAB, "run", *how, str(path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_and_resume_is_exact(tmp_path, reference, signum, status):
    proc = start(tmp_path, "runs")
    wait_for(lambda: epochs_done(tmp_path, "runs") >= 3, proc, "3 epochs")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    path = run_dir_of(tmp_path, "runs")
    assert f"rnnlab resume {path}" in " ".join(err.split())  # the hint may be wrapped
    assert "Traceback" not in err
    summary = RunDir(path).read_summary()
    assert summary["status"] == "interrupted"
    assert summary["stop_reason"].startswith(signal.Signals(signum).name)
    assert 3 <= RunDir(path).load_checkpoint().state.epoch < EPOCHS
    resume(path) if signum == signal.SIGINT else resume(path, "--resume")
    assert_same_outcome(path, reference)


def test_sigkill_then_resume_from_last_checkpoint_is_exact(tmp_path, reference):
    proc = start(tmp_path, "runs")
    wait_for(lambda: checkpointed_epochs(tmp_path, "runs") >= 4, proc, "4 checkpointed epochs")
    proc.kill()
    proc.communicate(timeout=60)
    path = run_dir_of(tmp_path, "runs")
    assert RunDir(path).read_summary()["status"] == "running"  # it never knew
    resume(path)
    assert_same_outcome(path, reference)


def test_second_sigint_exits_at_once_leaving_the_checkpoint_whole(tmp_path, reference):
    proc = start(tmp_path, "runs")
    wait_for(lambda: checkpointed_epochs(tmp_path, "runs") >= 3, proc, "3 checkpointed epochs")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    path = run_dir_of(tmp_path, "runs")
    assert RunDir(path).load_checkpoint().state.epoch >= 3
    resume(path)
    assert_same_outcome(path, reference)


def test_kill_while_writing_a_checkpoint_leaves_the_previous_one(tmp_path, reference):
    marker = tmp_path / "writing"
    config = write_tiny(tmp_path, TINY)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_WRITER,
            str(marker),
            "run",
            str(config),
            *SETS,
            "--out",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(marker.exists, proc, "the third checkpoint write")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    path = run_dir_of(tmp_path, "runs")
    partial = list(path.glob(".checkpoint.npz.*.tmp"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0  # the write was cut short
    # the second checkpoint written, whole (epoch 2, or later when the writer skipped one that a
    # newer checkpoint replaced while it was busy)
    assert RunDir(path).load_checkpoint().state.epoch >= 2
    resume(path)
    assert_same_outcome(path, reference)
