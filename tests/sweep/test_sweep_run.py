"""Running sweeps: the same numbers on every executor, resume, failures and dead workers."""

from __future__ import annotations

import json
import os

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.executors import THREAD_ENV, ExecutorOptions, RunResult, make_executor
from rnnlab.executors.local import LocalExecutor
from rnnlab.executors.serial import SerialExecutor
from rnnlab.experiment.config import read_toml
from rnnlab.registry.manager import Registry
from rnnlab.sweep import build_plan, run_sweep
from rnnlab.sweep.report import aggregate, to_json
from tests.support.sweeps import (
    dummy_jobs,
    report_environment,
    run_record,
    write_interrupter,
    write_killer,
    write_sweep,
)

GRID = """
seeds = [0, 1]
"model.hidden_size" = [3, 5]
"""


def plan_for(path, plugin_files=()):
    return build_plan(
        read_toml(path), Registry(plugin_files), source=path, plugin_files=plugin_files
    )


def records(outcome) -> dict:
    return {run: run_record(outcome.directory / run) for run in outcome.results}


class Recorder:
    """A display that remembers what it was told."""

    def __init__(self):
        self.started, self.finished, self.previous = [], [], None

    def begin(self, total, previous, executor, directory):
        self.previous = previous

    def started_run(self, job):
        self.started.append(job.run)

    def finished_run(self, result):
        self.finished.append(result)


def display():
    rec = Recorder()

    class Display:
        begin = rec.begin
        started = staticmethod(rec.started_run)
        finished = staticmethod(rec.finished_run)

    return Display(), rec


@pytest.fixture(scope="module")
def serial_outcome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serial")
    path = write_sweep(folder, GRID)
    return run_sweep(plan_for(path), SerialExecutor(), out_root=folder / "runs")


def test_serial_sweep_writes_a_run_directory_per_variant_and_seed(serial_outcome):
    outcome = serial_outcome
    assert len(outcome.results) == 4 and not outcome.failed
    described = json.loads((outcome.directory / "sweep.json").read_text())
    assert described["fingerprint"] == outcome.plan.fingerprint
    assert [r["run"] for r in described["runs"]] == list(outcome.results)
    for run in outcome.results:
        d = outcome.directory / run
        assert {p.name for p in d.iterdir()} >= {
            "config.toml",
            "summary.json",
            "metrics.jsonl",
            "params.npz",
        }
    rows = aggregate(outcome)
    means = [r["metrics"]["val"]["loss"]["mean"] for r in rows]
    assert means == sorted(means) and all(r["finished"] == 2 for r in rows)
    by_id = {r["variant"]: r for r in rows}
    losses = [
        outcome.results[run].summary["metrics"]["test"]["mse"]
        for run in outcome.results
        if run.startswith("v00")
    ]
    stats = by_id["v00"]["metrics"]["test"]["mse"]
    assert stats["n"] == 2 and stats["mean"] == pytest.approx(sum(losses) / 2)
    assert stats["std"] == pytest.approx(abs(losses[0] - losses[1]) / 2**0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["local", "dask"])
def test_local_processes_and_dask_match_serial_bit_for_bit(serial_outcome, tmp_path, name):
    if name == "dask":  # `--dask local`: a distributed.LocalCluster on the loopback interface
        pytest.importorskip("distributed")
    expected = records(serial_outcome)
    options = ExecutorOptions(workers=2, address="local" if name == "dask" else None)
    executor = make_executor(Registry(), name, options)
    shown, rec = display()
    outcome = run_sweep(
        plan_for(serial_outcome.plan.source), executor, out_root=tmp_path, display=shown
    )
    assert not outcome.failed, outcome.failed
    assert records(outcome) == expected
    if name == "local":
        assert sorted(rec.started) == sorted(expected)
    else:  # Dask's start events come from the workers; late ones may miss the display
        assert set(rec.started) <= set(expected)
    assert sorted(r.run for r in rec.finished) == sorted(expected)


def test_running_again_skips_finished_runs_and_reruns_the_others(tmp_path):
    path = write_sweep(tmp_path, GRID)
    first = run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    runs = list(first.results)
    # one run interrupted mid-way, one failed earlier: both run again; the rest are skipped
    interrupted, failed = first.directory / runs[1], first.directory / runs[2]
    for d, status in ((interrupted, "running"), (failed, "failed")):
        summary = json.loads((d / "summary.json").read_text())
        (d / "summary.json").write_text(json.dumps({**summary, "status": status}))
        (d / "metrics.jsonl").write_text('{"partial": true}\n')
    shown, rec = display()
    again = run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs", display=shown)
    assert rec.previous == 2 and sorted(rec.started) == sorted([runs[1], runs[2]])
    assert [again.results[r].previous for r in runs] == [True, False, False, True]
    assert records(again) == records(first)  # rerun from scratch: the same numbers
    third = run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    assert all(r.previous for r in third.results.values())


def test_a_changed_sweep_is_refused_but_more_seeds_are_not(tmp_path):
    path = write_sweep(tmp_path, GRID)
    run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 3"))
    with pytest.raises(
        RnnlabError,
        match=r"holds a different sweep \(variant v00 "
        r"\(hidden_size=3\): train.epochs was 2, is 3\)",
    ):
        run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    path.write_text(
        path.read_text()
        .replace("epochs = 3", "epochs = 2")
        .replace("seeds = [0, 1]", "seeds = [0, 1, 2]")
    )
    outcome = run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    assert sum(r.previous for r in outcome.results.values()) == 4 and len(outcome.results) == 6


def test_a_folder_that_is_no_sweep_is_refused(tmp_path):
    path = write_sweep(tmp_path, GRID)
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "notes.txt").write_text("mine")
    with pytest.raises(RnnlabError, match="is not a sweep directory"):
        run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")


FAILING = """
seeds = [0, 1]
"task.window" = [500, 5]
"""


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    path = write_sweep(tmp_path, FAILING)
    outcome = run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    assert [r.status for r in outcome.results.values()] == [
        "failed",
        "failed",
        "finished",
        "finished",
    ]
    bad = outcome.failed[0]
    assert "window 500 does not fit the train split" in bad.error
    recorded = json.loads((outcome.directory / bad.run / "summary.json").read_text())
    assert recorded["status"] == "failed" and "window 500" in recorded["error"]
    report = to_json(outcome)
    assert [v["failed"] for v in report["variants"]] == [0, 2]  # the working variant first


def test_fail_fast_stops_at_the_first_failure(tmp_path):
    path = write_sweep(tmp_path, FAILING)
    outcome = run_sweep(
        plan_for(path), SerialExecutor(), out_root=tmp_path / "runs", fail_fast=True
    )
    assert outcome.stopped_early and len(outcome.results) == 1


def test_local_worker_death_is_retried_in_a_new_process(tmp_path):
    killer = write_killer(tmp_path, seed=1)
    path = write_sweep(tmp_path, GRID, plugins='plugins = ["killer.py"]')
    outcome = run_sweep(plan_for(path, [killer]), LocalExecutor(2), out_root=tmp_path / "runs")
    assert not (tmp_path / "kill-marker").exists()  # a worker did die
    assert len(outcome.results) == 4 and not outcome.failed
    for run in outcome.results:
        assert (
            json.loads((outcome.directory / run / "summary.json").read_text())["status"]
            == "finished"
        )
        assert len((outcome.directory / run / "metrics.jsonl").read_text().splitlines()) == 2


def test_a_run_that_always_kills_its_worker_fails_after_bounded_retries(tmp_path):
    killer = write_killer(tmp_path, seed=1, always=True)
    path = write_sweep(tmp_path, "seeds = [1, 0]\n", plugins='plugins = ["killer.py"]')
    outcome = run_sweep(
        plan_for(path, [killer]), LocalExecutor(1, retries=1), out_root=tmp_path / "runs"
    )
    statuses = {r.seed: r for r in outcome.results.values()}
    assert statuses[0].ok and statuses[0].attempts == 1
    dead: RunResult = statuses[1]
    assert not dead.ok and dead.attempts == 2 and "died 2 times" in dead.error


@pytest.fixture(scope="module")
def dask_cluster():
    """One local cluster shared by the tests that reach it by address, as a remote one."""
    pytest.importorskip("distributed")
    from rnnlab.executors.dask_cluster import local_cluster

    cluster = local_cluster(2, retries=2)
    yield cluster
    cluster.close()


@pytest.mark.slow
def test_dask_sweep_survives_a_killed_worker(tmp_path, dask_cluster):
    killer = write_killer(tmp_path, seed=1)
    path = write_sweep(tmp_path, GRID, plugins='plugins = ["killer.py"]')
    executor = make_executor(
        Registry(), "dask", ExecutorOptions(address=dask_cluster.scheduler_address)
    )
    outcome = run_sweep(plan_for(path, [killer]), executor, out_root=tmp_path / "runs")
    assert not (tmp_path / "kill-marker").exists()  # the worker was killed mid-run
    assert len(outcome.results) == 4 and not outcome.failed
    for run in outcome.results:  # whole: the killed attempt's partial directory was cleared
        assert len((outcome.directory / run / "metrics.jsonl").read_text().splitlines()) == 2
    serial = run_sweep(plan_for(path, [killer]), SerialExecutor(), out_root=tmp_path / "serial")
    assert records(outcome) == records(serial)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["local", "dask"])
def test_workers_pin_their_thread_pools_to_one(name, request):
    options = ExecutorOptions(workers=1)
    if name == "dask":
        options = ExecutorOptions(address=request.getfixturevalue("dask_cluster").scheduler_address)
    before = dict(os.environ)
    executor = make_executor(Registry(), name, options)
    results = list(executor.run(report_environment, dummy_jobs(2), lambda job: None))
    assert len(results) == 2
    for result in results:
        assert {k: result.summary[k] for k in THREAD_ENV} == THREAD_ENV
        assert result.summary["OPENBLAS_CORETYPE"] == os.environ.get("OPENBLAS_CORETYPE")
    assert dict(os.environ) == before  # this process's environment is left as it was


def test_a_second_sweep_in_the_same_directory_at_once_is_refused(tmp_path):
    from rnnlab.sweep.directory import sweep_lock

    path = write_sweep(tmp_path, GRID)
    held = tmp_path / "runs" / "tiny"
    held.mkdir(parents=True)
    with sweep_lock(held), pytest.raises(RnnlabError, match="another rnnlab sweep is running"):
        run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    outcome = run_sweep(plan_for(path), SerialExecutor(), out_root=tmp_path / "runs")
    assert len(outcome.results) == 4  # free again once the first one is done


def test_an_interrupted_run_is_resumed_from_its_checkpoint(tmp_path):
    plugin = write_interrupter(tmp_path, seed=1)
    path = write_sweep(tmp_path, "seeds = [0, 1]\n", plugins='plugins = ["interrupter.py"]')
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 4"))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan_for(path, [plugin]), SerialExecutor(), out_root=tmp_path / "runs")
    outcome = run_sweep(plan_for(path, [plugin]), SerialExecutor(), out_root=tmp_path / "runs")
    resumed = [r for r in outcome.results.values() if r.seed == 1][0]
    assert resumed.ok and resumed.summary.get("resumed") == 1
    clean = run_sweep(plan_for(path, [plugin]), SerialExecutor(), out_root=tmp_path / "clean")
    assert records(outcome) == records(clean)  # as if it had never stopped


# Records the worker's pid at its first epoch; the run then goes on for a very long time.
RECORD_PID = """
import os
from pathlib import Path

from rnnlab.hookspecs import hookimpl


@hookimpl
def on_epoch_end(run, epoch):
    if epoch == 1:
        Path(__file__).with_name(f"worker-{os.getpid()}").write_text("")
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, waiting for a parent to reap it, has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_stop_when_the_sweep_that_started_them_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "recorder.py").write_text(RECORD_PID)
    config = write_sweep(tmp_path, GRID, plugins='plugins = ["recorder.py"]')
    text = config.read_text().replace("epochs = 2", "epochs = 1000000")
    config.write_text(text)
    parent = subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "sweep", str(config), "--workers", "2"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids: list[int] = []
    try:
        for _ in range(600):  # until both workers train (spawning them takes seconds)
            pids = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
            if len(pids) == 2 or parent.poll() is not None:
                break
            time.sleep(0.1)
        assert len(pids) == 2, "the workers never started"
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    for _ in range(600):  # a generous bound: they notice within about a second
        if not any(alive(p) for p in pids):
            break
        time.sleep(0.1)
    still = [p for p in pids if alive(p)]
    for p in still:
        os.kill(p, signal.SIGKILL)
    assert not still, "workers outlived the sweep that started them"
    statuses = [
        json.loads((run / "summary.json").read_text())["status"]
        for run in (tmp_path / "runs" / "tiny").glob("v*")
    ]
    assert statuses == ["interrupted", "interrupted"]  # stopped as SIGTERM stops a run


@pytest.mark.slow
@pytest.mark.parametrize("name", ["serial", "local"])
def test_jobs_from_a_generator_are_taken_one_per_free_worker(name):
    """A search makes each job from the results so far: an executor given an iterator (not a
    list) takes the next job only when a worker is free, after the results before it."""
    pulled, seen = [], []

    def jobs():
        for job in dummy_jobs(5):
            pulled.append(job.run)
            yield job

    executor = make_executor(Registry(), name, ExecutorOptions(workers=2))
    for result in executor.run(report_environment, jobs(), lambda job: None):
        seen.append((result.run, len(pulled)))
    assert sorted(run for run, _ in seen) == [f"r{i}" for i in range(5)]
    workers = 1 if name == "serial" else 2
    for i, (_, taken) in enumerate(seen):  # never more in flight than workers
        assert taken <= i + workers
