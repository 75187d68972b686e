"""Stateful mode in the core (rnnlab.training.stateful): parallel streams, state carried across
chunks,
and no backend epoch runner."""

import numpy as np
import pytest

from rnnlab.experiment.config import ModelConfig, TrainConfig, build_experiment
from rnnlab.hookspecs import hookimpl
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.nn.optim import Optimizer
from rnnlab.registry.manager import Registry
from rnnlab.specs import BackendSpec, Dataset, Split, Task, TaskSpec
from rnnlab.testing import reference_backend
from rnnlab.training.loop import RunInfo, fit
from rnnlab.training.session import EpochPlan, prepare
from rnnlab.training.stateful import (
    chunks,
    mean_over_chunks,
    parallel_streams,
    stateful_epoch,
    stream_loss,
)


def stream(L=23, V=3, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, L + 1)
    return Split(np.eye(V)[ids[:-1]][:, None, :], ids[1:, None])


def model(V=3, seed=0):
    cfg = ModelConfig(hidden_size=5)
    return Model(
        cfg, reference_backend(), init_params(cfg, Shape(V, V), np.random.default_rng(seed))
    )


def test_parallel_streams_hold_consecutive_steps():
    s = stream(L=23)
    p = parallel_streams(s, 4, 2)  # 5 steps per stream, the last 3 steps dropped
    assert p.x.shape == (5, 4, 3) and p.y.shape == (5, 4)
    for b in range(4):
        np.testing.assert_array_equal(p.x[:, b], s.x[5 * b : 5 * b + 5, 0])
        np.testing.assert_array_equal(p.y[:, b], s.y[5 * b : 5 * b + 5, 0])


def test_chunks_carry_the_state_like_one_pass():
    m, s = model(), stream()
    whole = m.outputs(s.x, "every")[0]
    pieces = np.concatenate([out for _, out in chunks(m, s.x, 4)])
    np.testing.assert_allclose(pieces, whole, rtol=1e-12, atol=1e-14)
    full = m.loss(s.x, s.y, "xent", "every")
    assert stream_loss(m, s, "xent", 4) == pytest.approx(full, rel=1e-12)
    reset = np.mean(
        [m.loss(s.x[i : i + 4], s.y[i : i + 4], "xent", "every") for i in range(0, 20, 4)]
    )
    assert abs(reset - m.loss(s.x[:20], s.y[:20], "xent", "every")) > 1e-6  # state matters


def test_stateful_epoch_is_truncated_bptt_from_the_carried_state():
    s = parallel_streams(stream(L=40), 2, 5)  # 20 steps per stream, 4 chunks of 5
    cfg = TrainConfig(optimizer="sgd", grad_clip="none")
    plan = EpochPlan(ModelConfig(hidden_size=5), cfg, "xent", "every")
    got, want = model(), model()
    losses_got = stateful_epoch(got, Optimizer(cfg, got.params), plan, s, 5, lr=0.1)
    state, losses = None, []
    for start in range(0, 20, 5):  # by hand: BPTT over each chunk from the previous final state
        value, grads, state = want.loss_and_grads(
            s.x[start : start + 5], s.y[start : start + 5], "xent", "every", state
        )
        for k in want.params:
            want.params[k] -= 0.1 * grads[k]
        losses.append(value)
    np.testing.assert_allclose(losses_got, losses, rtol=1e-12)
    assert mean_over_chunks(losses_got, 20, 5) == pytest.approx(np.mean(losses), rel=1e-12)
    for k in want.params:
        np.testing.assert_allclose(got.params[k], want.params[k], rtol=1e-12, atol=1e-15)


class StreamTask(Task):
    def build(self, rng):
        splits = {
            name: stream(L=n, seed=i)
            for i, (name, n) in enumerate((("train", 60), ("val", 12), ("test", 12)))
        }
        return Dataset(splits, 3, 3, "xent", "every", chunk_length=5)


class RunnerBackend(type(reference_backend())):
    """The reference backend with an epoch runner that must not be used in stateful mode."""

    name = "with_runner"

    def epoch_runner(self, plan):
        raise AssertionError("the epoch runner was asked for in stateful mode")


class Plugin:
    @hookimpl
    def register_tasks(self):
        return [TaskSpec("streams", StreamTask)]

    @hookimpl
    def register_backends(self):
        return [BackendSpec("with_runner", RunnerBackend)]


def test_fit_walks_streams_without_a_backend_runner(tmp_path):
    registry = Registry()
    registry.add_module(Plugin(), "streams_test")
    raw = {
        "task": {"name": "streams"},
        "model": {"hidden_size": 4},
        "train": {"epochs": 3, "batch_size": 3, "backend": "with_runner", "keep_best": False},
    }
    exp = build_experiment(raw, registry, source=tmp_path / "x.toml")
    session = prepare(exp, registry)
    assert session.dataset.splits["train"].x.shape == (20, 3, 3)
    history = fit(session, registry, RunInfo(exp, session.dataset, session.model))
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    val = session.dataset.splits["val"]
    whole = session.model.loss(val.x, val.y, "xent", "every")  # the state carried through val
    assert history[-1]["val_loss"] == pytest.approx(whole, rel=1e-12)
