"""A checkpoint refers to the history in metrics.jsonl instead of copying it, so that writing
one costs the same late in a run as early."""

from __future__ import annotations

import json
import zipfile

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.store.rundir import CHECKPOINT, METRICS, RunDir
from rnnlab.training.run import resume_experiment, run_experiment
from tests.support.tiny_runs import assert_same_outcome, tiny_experiment


def meta(run_dir) -> dict:
    with zipfile.ZipFile(run_dir / CHECKPOINT) as z, z.open("meta.npy") as f:
        raw = f.read()
    return json.loads(raw[raw.index(b"\n", 10) + 1 :].decode("utf-8"))


def test_a_checkpoint_does_not_grow_with_the_epochs(tmp_path):
    sizes = {}
    for epochs in (2, 12):
        exp, registry = tiny_experiment(tmp_path, f"train.epochs={epochs}")
        _, run = run_experiment(exp, registry, out_root=tmp_path / "runs", run_name=f"e{epochs}")
        sizes[epochs] = (run.path / CHECKPOINT).stat().st_size
        recorded = meta(run.path)
        assert "history" not in recorded
        assert recorded["history_lines"] == epochs
        assert len(RunDir(run.path).load_checkpoint().state.history) == epochs
    # ten more epoch records (~100 bytes each) would be in a checkpoint holding the history
    assert abs(sizes[12] - sizes[2]) < 100, sizes


def test_a_resume_reads_the_history_back_and_ends_as_if_never_stopped(tmp_path):
    exp, registry = tiny_experiment(tmp_path, "train.epochs=2")
    _, run = run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="short")
    with (run.path / METRICS).open("a") as f:
        f.write('{"epoch": 3, "loss": 0.1')  # a torn line after the checkpoint's: dropped
    exp4, registry4 = tiny_experiment(tmp_path, "train.epochs=4")
    resume_experiment(run.path, registry4, experiment=exp4)
    run_experiment(exp4, registry4, out_root=tmp_path / "runs", run_name="whole")
    assert_same_outcome(run.path, tmp_path / "runs" / "whole")


def test_a_resume_refuses_a_history_changed_since_the_checkpoint(tmp_path):
    exp, registry = tiny_experiment(tmp_path, "train.epochs=2")
    _, run = run_experiment(exp, registry, out_root=tmp_path / "runs", run_name="r")
    lines = (run.path / METRICS).read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace('"epoch": 1', '"epoch": 1.0')
    (run.path / METRICS).write_text("".join(lines))
    exp3, registry3 = tiny_experiment(tmp_path, "train.epochs=3")
    with pytest.raises(RnnlabError, match=r"metrics\.jsonl: does not hold the 2 epoch records"):
        resume_experiment(run.path, registry3, experiment=exp3)
