"""One writer per run directory, and a run status that tells a live run from a dead one: real
processes racing for one run, SIGKILLed runs, stale lock records."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.store.lock import LOCK, RunLock, RunLocked, holder, read_holder
from rnnlab.store.records import read_run
from rnnlab.training.run import resume_experiment, run_experiment
from tests.support.tiny_runs import assert_same_outcome, tiny_experiment, write_tiny

RNNLAB = [sys.executable, "-c", "from rnnlab.cli import main; main()"]

# Stops the run (as Ctrl-C would) at the end of epoch STOP_AT, when loaded.
# Stops the first run only: a resume loads the plugin files its run recorded, this one too.
STOP = """
from pathlib import Path
from rnnlab.hookspecs import hookimpl

@hookimpl
def on_epoch_end(epoch):
    done = Path(__file__).with_suffix(".done")
    if epoch == {at} and not done.exists():
        done.write_text("")
        raise KeyboardInterrupt
"""

# The process that wins the lock says so in a file, then waits (once) for the test to let it
# go on: the two resumes then overlap whatever the machine's speed. It changes no number.
BARRIER = """
import os, time
from pathlib import Path
from rnnlab.hookspecs import hookimpl

@hookimpl
def on_run_start(run):
    folder = Path(os.environ["BARRIER_DIR"])
    (folder / f"started-{os.getpid()}").write_text("")
    t0 = time.monotonic()
    while not (folder / "go").exists() and time.monotonic() - t0 < 120:
        time.sleep(0.02)
"""

# Holds a run directory's lock until killed (a stand-in for a live writer).
HOLD = """
import sys, time
from rnnlab.store.lock import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(300)
"""


def interrupted_run(folder: Path, at: int = 2, *sets: str) -> Path:
    """A tiny run stopped (as by Ctrl-C) after epoch ``at``; returns its directory."""
    stop = folder / "stop.py"
    stop.write_text(STOP.format(at=at))
    exp, registry = tiny_experiment(folder, *sets, plugins=[stop])
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, registry, out_root=folder / "runs")
    (path,) = (folder / "runs").iterdir()
    return path


def reference_run(folder: Path, *sets: str) -> Path:
    exp, registry = tiny_experiment(folder, *sets)
    _, run_dir = run_experiment(exp, registry, out_root=folder / "reference")
    return run_dir.path


def wait_for(predicate, what: str, limit: float = 120.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < limit, f"no {what} after {limit} s"
        time.sleep(0.02)


def test_the_lock_records_its_holder_and_is_released(tmp_path):
    with RunLock(tmp_path):
        record = read_holder(tmp_path)
        assert (record.pid, record.host) == (os.getpid(), socket.gethostname())
        assert record.started
        assert holder(tmp_path)[0] is True
    assert holder(tmp_path)[0] is False
    assert (tmp_path / LOCK).exists()  # the record stays, to name the last holder


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(
            RunLocked,
            match=rf"in use by pid {proc.pid} on "
            rf"{socket.gethostname()} since ",
        ):
            RunLock(tmp_path).acquire()
        assert time.monotonic() - t0 < 5  # at once, not after a timeout
        assert holder(tmp_path)[0] is True
    finally:
        proc.kill()
        proc.wait()
    RunLock(tmp_path).acquire()  # the kernel dropped the dead holder's lock: taken over


def test_a_stale_record_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    (tmp_path / LOCK).write_text(
        json.dumps(
            {"pid": int(dead), "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}
        )
    )
    assert holder(tmp_path)[0] is False
    with RunLock(tmp_path):
        assert read_holder(tmp_path).pid == os.getpid()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with RunLock(tmp_path), RunLock(tmp_path):
        assert holder(tmp_path)[0] is True
    assert holder(tmp_path)[0] is False


@pytest.mark.parametrize("command", [["resume"], ["run", "--resume"]])
def test_resume_refuses_a_run_another_process_holds(tmp_path, command):
    path = interrupted_run(tmp_path)
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.name != LOCK}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        result = CliRunner().invoke(main, [*command, str(path)])
        assert result.exit_code == 2, result.output
        assert f"in use by pid {proc.pid}" in " ".join(result.output.split())
        assert "Traceback" not in result.output
    finally:
        proc.kill()
        proc.wait()
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != LOCK} == before


@pytest.mark.slow
def test_two_resumes_at_once_one_trains_the_other_is_refused(tmp_path):
    """The bar: two `rnnlab resume` of one run started together; exactly one trains, the
    other exits non-zero naming the holder, and the run ends equal to an uninterrupted one."""
    reference = reference_run(tmp_path)
    path = interrupted_run(tmp_path)
    barrier = tmp_path / "barrier.py"
    barrier.write_text(BARRIER)
    env = {**os.environ, "BARRIER_DIR": str(tmp_path)}
    args = [*RNNLAB, "resume", str(path), "--plugin", str(barrier)]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    try:
        wait_for(lambda: list(tmp_path.glob("started-*")), "winner")
        (winner_pid,) = [int(p.name.split("-")[1]) for p in tmp_path.glob("started-*")]
        (loser,) = [p for p in procs if p.pid != winner_pid]
        _, err = loser.communicate(timeout=120)  # refused while the winner waits
        assert loser.returncode == 2, err
        assert f"in use by pid {winner_pid} on {socket.gethostname()}" in " ".join(err.split())
        assert "Traceback" not in err
        (tmp_path / "go").write_text("")
        (winner,) = [p for p in procs if p.pid == winner_pid]
        _, err = winner.communicate(timeout=300)
        assert winner.returncode == 0, err
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert len(list(tmp_path.glob("started-*"))) == 1  # only one ever trained
    assert_same_outcome(path, reference)


@pytest.mark.slow
def test_a_sigkilled_run_is_not_listed_as_running(tmp_path):
    """The bar: once a SIGKILLed run's process is gone, `rnnlab runs` and `show` say it died,
    with the last checkpoint and how to resume; resumed, it ends as an uninterrupted run."""
    config = write_tiny(tmp_path)
    proc = subprocess.Popen(
        [*RNNLAB, "run", str(config), "--set", "train.epochs=400", "--out", str(tmp_path / "runs")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: list((tmp_path / "runs").glob("*/checkpoint.npz")), "checkpoint")
        (path,) = (tmp_path / "runs").iterdir()
        listed = CliRunner().invoke(main, ["runs", str(tmp_path / "runs"), "--json"])
        assert json.loads(listed.output)[0]["status"] == "running"  # alive: running
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((path / "summary.json").read_text())["status"] == "running"  # never knew
    listed = CliRunner().invoke(main, ["runs", str(tmp_path / "runs"), "--json"])
    [run] = json.loads(listed.output)
    assert run["status"] == "died"
    assert f"is gone (pid {proc.pid} on {socket.gethostname()}" in run["problem"]
    assert "last checkpoint after" in run["problem"]
    assert f"resume with: rnnlab resume {path}" in run["problem"]
    table = CliRunner().invoke(main, ["runs", str(tmp_path / "runs")])
    assert "died" in table.output and "running" not in table.output
    shown = CliRunner().invoke(main, ["show", str(path)])
    assert "died" in shown.output and "rnnlab resume" in " ".join(shown.output.split())
    assert read_run(path).status == "died"


def test_a_run_whose_holder_lives_is_running(tmp_path):
    path = interrupted_run(tmp_path)
    summary = json.loads((path / "summary.json").read_text())
    summary.pop("error")
    (path / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    assert read_run(path).status == "died"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        assert read_run(path).status == "running" and read_run(path).why is None
    finally:
        proc.kill()
        proc.wait()
    record = read_run(path)
    assert record.status == "died" and "last checkpoint after 1 epoch;" in record.why


def test_resume_after_death_is_exact(tmp_path):
    reference = reference_run(tmp_path)
    path = interrupted_run(tmp_path)
    exp, registry = tiny_experiment(tmp_path)
    resume_experiment(path, registry)
    assert_same_outcome(path, reference)


# -- sweeps ----------------------------------------------------------------------------------
def sweep_with_a_dead_run(tmp_path):
    from rnnlab.executors.serial import SerialExecutor
    from rnnlab.experiment.config import read_toml
    from rnnlab.registry.manager import Registry
    from rnnlab.sweep import build_plan, run_sweep
    from tests.support.sweeps import write_sweep

    path = write_sweep(tmp_path, "seeds = [0, 1]\n")

    def sweep(display=None):
        plan = build_plan(read_toml(path), Registry(), source=path, plugin_files=())
        return run_sweep(plan, SerialExecutor(), out_root=tmp_path / "runs", display=display)

    first = sweep()
    run = first.directory / list(first.results)[1]
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    return sweep, run


class Notes:
    def __init__(self):
        self.notes = []

    def begin(self, *args): ...
    def started(self, job): ...
    def finished(self, result): ...

    def note(self, message):
        self.notes.append(message)


def test_a_sweep_says_a_run_died_and_resumes_it(tmp_path):
    sweep, run = sweep_with_a_dead_run(tmp_path)
    display = Notes()
    outcome = sweep(display)
    assert not outcome.failed
    [note] = display.notes
    assert note.startswith(
        f"{run.name} died: the process that ran it is gone (pid "
        f"{os.getpid()} on {socket.gethostname()}"
    )
    assert note.endswith("; last checkpoint after 2 epochs; resuming it")


def test_a_sweep_leaves_a_run_another_process_writes_alone(tmp_path):
    sweep, run = sweep_with_a_dead_run(tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != LOCK}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        display = Notes()
        outcome = sweep(display)
    finally:
        proc.kill()
        proc.wait()
    assert display.notes == []  # alive: not said to have died
    [failed] = outcome.failed
    assert failed.run == run.name and f"in use by pid {proc.pid}" in failed.error
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != LOCK} == before


def test_another_thread_of_this_process_is_refused(tmp_path):
    import threading

    errors = []

    def second():
        try:
            RunLock(tmp_path).acquire()
        except RunLocked as exc:
            errors.append(str(exc))

    with RunLock(tmp_path):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"in use by pid {os.getpid()}" in errors[0]
