"""Writing a run directory when the disk says no: a full disk (an injected ENOSPC), a killed
writer's temporary files, another process's run, and the permissions run files get."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import RnnlabError
from rnnlab.executors.base import RunJob
from rnnlab.store.checkpoint import Checkpoint, TrainState
from rnnlab.store.lock import RunLock
from rnnlab.store.rundir import CHECKPOINT, CONFIG, METRICS, PARAMS, SUMMARY, RunDir
from rnnlab.sweep.worker import run_job
from rnnlab.training.run import resume_experiment, run_experiment
from tests.support.tiny_runs import assert_same_outcome, tiny_experiment, write_tiny

NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fail_replacing(monkeypatch, name: str, *, after: int = 0) -> list[int]:
    """``os.replace`` onto a file called ``name`` fails with ENOSPC after ``after`` successes
    (then always); returns the count of attempts."""
    real, calls = os.replace, [0]

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            calls[0] += 1
            if calls[0] > after:
                no_space()
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_an_append_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    run_dir = RunDir(tmp_path)
    first = {"epoch": 1, "loss": 0.5}
    run_dir.append_metrics(first)
    real = os.write

    def half_then_full(fd, data):  # the disk fills in the middle of the line
        monkeypatch.setattr(os, "write", no_space)
        return real(fd, bytes(data[: len(data) // 2]))

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(RnnlabError, match=r"metrics\.jsonl: cannot write: No space left"):
        run_dir.append_metrics({"epoch": 2, "loss": 0.25})
    monkeypatch.undo()
    assert (tmp_path / METRICS).read_text() == json.dumps(first) + "\n"


def test_a_full_disk_during_the_metrics_append_fails_the_run_in_one_message(tmp_path, monkeypatch):
    config = write_tiny(tmp_path)
    real = os.write

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(METRICS):
            no_space()
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(tmp_path / "runs")])
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert "metrics.jsonl: cannot write: No space left on device" in result.output
    assert "Traceback" not in result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / SUMMARY).read_text())["status"] == "failed"
    assert not (run / METRICS).exists() or (run / METRICS).read_text() == ""


def test_a_full_disk_while_a_checkpoint_is_written_names_it_and_the_run_resumes(
    tmp_path, monkeypatch
):
    exp, registry = tiny_experiment(tmp_path, "train.checkpoint_every=1")
    calls = fail_replacing(monkeypatch, CHECKPOINT, after=1)  # the second checkpoint fails
    with pytest.raises(RnnlabError) as caught:
        run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="full")
    monkeypatch.undo()
    message = str(caught.value)
    assert calls[0] >= 2
    assert f"{CHECKPOINT}: cannot write: No space left on device" in message
    assert PARAMS not in message
    assert "resume with: rnnlab resume" in message
    run = tmp_path / "runs" / "full"
    summary = json.loads((run / SUMMARY).read_text())
    assert summary["status"] == "failed" and CHECKPOINT in summary["error"]
    assert not list(run.glob(".*.tmp"))

    resume_experiment(run, registry)  # the disk has room again
    run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="whole")
    assert_same_outcome(run, tmp_path / "runs" / "whole")


def test_a_disk_full_for_every_new_file_still_marks_the_run_failed(tmp_path, monkeypatch):
    """After the checkpoint, params.npz and the summary's temporary file fail too: the summary
    is rewritten over its own bytes."""
    exp, registry = tiny_experiment(tmp_path, "train.checkpoint_every=1")
    real_open, full = os.open, [False]

    def open_(path, flags, *args, **kwargs):
        if full[0] and flags & os.O_CREAT:
            no_space()
        return real_open(path, flags, *args, **kwargs)

    def replace(src, dst):
        if Path(dst).name == CHECKPOINT and len(list(Path(dst).parent.glob(METRICS))):
            if (Path(dst).parent / METRICS).read_text().count("\n") >= 2:
                full[0] = True
                no_space()
        return os.rename(src, dst)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(RnnlabError, match=CHECKPOINT):
        run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="full")
    monkeypatch.undo()
    summary = json.loads((tmp_path / "runs" / "full" / SUMMARY).read_text())
    assert summary["status"] == "failed"
    assert CHECKPOINT in summary["error"]


def test_a_params_write_that_fails_after_training_fails_the_run(tmp_path, monkeypatch):
    exp, registry = tiny_experiment(tmp_path, "train.epochs=1")
    fail_replacing(monkeypatch, PARAMS)
    with pytest.raises(RnnlabError, match=f"{PARAMS}: cannot write"):
        run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="r")
    monkeypatch.undo()
    summary = json.loads((tmp_path / "runs" / "r" / SUMMARY).read_text())
    assert summary["status"] == "failed" and PARAMS in summary["error"]


def test_a_sweep_worker_reports_a_full_disk_as_a_failed_run(tmp_path, monkeypatch):
    config = write_tiny(tmp_path)
    raw = {
        "experiment": {"name": "tiny", "seed": 3},
        "task": {"name": "sine", "points": 200, "window": 5},
        "model": {"hidden_size": 8},
        "train": {"epochs": 1, "batch_size": 16},
    }
    job = RunJob(
        run="v0-s3",
        variant=0,
        seed=3,
        raw=raw,
        source=str(config),
        plugin_files=(),
        sweep_dir=str(tmp_path / "sweep"),
    )
    monkeypatch.setattr(os, "replace", no_space)
    result = run_job(job)  # never raises: the sweep goes on with its other runs
    monkeypatch.undo()
    assert result.status == "failed"
    assert "cannot write: No space left on device" in result.error


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    run_dir = RunDir(tmp_path)
    state = TrainState()
    ckpt = Checkpoint(
        state, {"w": np.zeros(2)}, {"steps": 0, "slots": {}}, {}, {"train": {}}, "digest"
    )
    previous = os.umask(umask)
    try:
        run_dir.write_config({"experiment": {"name": "x"}})
        run_dir.write_summary({"status": "running"})
        run_dir.append_metrics({"epoch": 1})
        run_dir.save_params({"w": np.zeros(2)})
        run_dir.save_checkpoint(ckpt)
    finally:
        os.umask(previous)
    for name in (CONFIG, SUMMARY, METRICS, PARAMS, CHECKPOINT):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_resume_removes_the_temporary_files_a_killed_writer_left(tmp_path):
    exp, registry = tiny_experiment(tmp_path, "train.epochs=2")
    _, run_dir = run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="r")
    left = [run_dir.path / f".{name}.k1ll3d.tmp" for name in (PARAMS, CHECKPOINT, SUMMARY)]
    for path in left:
        path.write_bytes(b"half a file")
    exp3, registry3 = tiny_experiment(tmp_path, "train.epochs=3")
    resume_experiment(run_dir.path, registry3, experiment=exp3)
    assert not any(path.exists() for path in left)
    assert not list(run_dir.path.glob(".*.tmp"))


def test_export_refuses_a_run_another_process_is_writing(tmp_path):
    exp, registry = tiny_experiment(tmp_path, "train.epochs=1")
    _, run_dir = run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="r")
    out = tmp_path / "model.safetensors"
    with RunLock(run_dir.path):  # as `rnnlab resume` holds it while it trains
        result = CliRunner().invoke(
            main, ["export", str(run_dir.path), "--format", "safetensors", "--out", str(out)]
        )
    assert result.exit_code != 0
    assert "is being written by" in result.output and "export it once" in result.output
    assert not out.exists()
