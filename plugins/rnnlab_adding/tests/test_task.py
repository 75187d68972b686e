"""The adding task: its data follow the definition, its metrics score what they say, and a small
experiment runs end to end."""

from pathlib import Path

import numpy as np
import pytest

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.registry.manager import Registry
from rnnlab.specs import TaskContext
from rnnlab.sweep import build_plan
from rnnlab.training.loop import evaluate
from rnnlab.training.session import prepare
from rnnlab_adding.task import OPTIONS, AddingTask, sequences
from tests.support.paths import EXPERIMENTS


def task(**options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(options)
    return AddingTask(values, TaskContext(Path.cwd()))


@pytest.mark.parametrize("length", [2, 3, 100, 1000])
def test_two_marks_one_in_each_half_and_target_is_their_sum(length):
    split, marks = sequences(500, length, np.random.default_rng(0))
    x, y = split.x, split.y
    assert x.shape == (length, 500, 2) and y.shape == (500, 1)
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    np.testing.assert_array_equal(markers.sum(axis=0), 2.0)
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = length // 2
    np.testing.assert_array_equal(markers[:half].sum(axis=0), 1.0)
    np.testing.assert_array_equal(markers[half:].sum(axis=0), 1.0)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=0))
    cols = np.arange(500)
    np.testing.assert_array_equal(markers[marks[:, 0], cols], 1.0)
    np.testing.assert_array_equal(markers[marks[:, 1], cols], 1.0)


def test_splits_sizes_and_seeded():
    t = task(length=10, train_size=7, val_size=5, test_size=3)
    a, b = t.build(np.random.default_rng(4)), t.build(np.random.default_rng(4))
    assert {k: len(v) for k, v in a.splits.items()} == {"train": 7, "val": 5, "test": 3}
    assert (a.input_size, a.output_size, a.loss, a.target) == (2, 1, "mse", "last")
    for name in a.splits:
        np.testing.assert_array_equal(a.splits[name].x, b.splits[name].x)
    assert not np.array_equal(a.splits["train"].x[:, :3], a.splits["test"].x)


class Oracle:
    """A stand-in model that predicts the target plus a fixed error."""

    def __init__(self, y, error):
        self.y, self.error = y, error

    def predict(self, x):
        return self.y + self.error


def test_metrics_score_errors_against_tolerance_and_baseline():
    t = task(length=20, test_size=4000)
    data = t.build(np.random.default_rng(1))
    y = data.splits["test"].y
    error = np.where(np.arange(len(y))[:, None] % 4 == 0, 0.05, 0.01)  # a quarter too far off
    m = t.metrics(Oracle(y, error), data, "test")
    assert m["mse"] == pytest.approx(np.mean(error**2))
    assert m["within_0.04"] == pytest.approx(0.75)
    assert m["solved"] == 1.0  # mse = (0.05**2 + 3 * 0.01**2) / 4 = 0.0007 < 0.01
    # always predicting 1: MSE = Var(u1 + u2) = 2/12 = 1/6
    assert m["baseline_mse"] == pytest.approx(1 / 6, abs=0.01)
    assert task(tolerance=0.1).metrics(Oracle(y, error), data, "test")["within_0.1"] == 1.0
    assert t.metrics(Oracle(y, 0.2), data, "test")["solved"] == 0.0  # mse 0.04 > 0.01


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shipped_experiments_share_length_size_and_budget(cell):
    raw = read_toml(EXPERIMENTS / f"adding_{cell}.toml")
    ref = read_toml(EXPERIMENTS / "adding_rnn.toml")
    assert raw["task"] == ref["task"] and raw["train"] == ref["train"]
    assert raw["model"]["cell"] == cell
    assert raw["model"]["hidden_size"] == ref["model"]["hidden_size"]
    build_experiment(raw, Registry(), source=EXPERIMENTS / f"adding_{cell}.toml")


def test_small_experiment_runs_end_to_end_with_demo():
    raw = read_toml(EXPERIMENTS / "adding_gru.toml")
    raw["task"].update(length=8, train_size=64, val_size=16, test_size=16)
    raw["model"]["hidden_size"] = 4
    raw["train"]["epochs"] = 1
    session = prepare(build_experiment(raw, Registry()), Registry())
    metrics = evaluate(session)
    assert set(metrics["test"]) == {"loss", "mse", "within_0.04", "baseline_mse", "solved"}
    assert metrics["test"]["loss"] == pytest.approx(metrics["test"]["mse"])
    demo = session.task.demo(session.model, session.dataset, np.random.default_rng(0))
    assert len(demo.rows) == 5 and len(demo.columns) == len(demo.rows[0])


@pytest.mark.parametrize("length, train_size", [(200, 10000), (400, 5000), (1000, 2000)])
def test_long_length_experiments_keep_the_steps_per_epoch(length, train_size):
    path = EXPERIMENTS / f"adding_T{length}.toml"
    raw = read_toml(path)
    assert (raw["task"]["length"], raw["task"]["train_size"]) == (length, train_size)
    assert raw["train"] == read_toml(EXPERIMENTS / "adding_T200.toml")["train"]
    build_experiment(raw, Registry(), source=path)


def test_long_length_sweep_is_every_cell_at_every_length():
    path = EXPERIMENTS / "adding_long_sweep.toml"
    raw = read_toml(path)
    plan = build_plan(raw, Registry(), source=path)
    runs = {
        (v.raw["model"]["cell"], v.raw["model"].get("chrono_tmax", 0), v.raw["task"]["length"])
        for v in plan.variants
    }
    cells = (("rnn", 0), ("lstm", 0), ("gru", 0))
    want = {(c, k, T) for c, k in cells for T in (200, 400, 1000)}
    assert runs == want | {("lstm", T, T) for T in (200, 400, 1000)}
    for v in plan.variants:
        T = v.raw["task"]["length"]
        assert v.raw["task"] == read_toml(EXPERIMENTS / f"adding_T{T}.toml")["task"]
        assert v.raw["train"] == read_toml(EXPERIMENTS / f"adding_T{T}.toml")["train"]
    assert raw["sweep"]["seeds"] == [0, 1, 2, 3, 4]
