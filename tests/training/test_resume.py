"""Checkpoints and exact resume, in-process: a run stopped anywhere (signal between batches,
a crash, a second signal) and resumed ends bit for bit like the same run never stopped."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from rnnlab.errors import RnnlabError, RunInterrupted, TrainingDiverged
from rnnlab.store.rundir import RunDir
from rnnlab.training import loop as train
from rnnlab.training.run import resume_experiment, run_experiment
from tests.support.tiny_runs import BATCHES_PER_EPOCH, assert_same_outcome, outcome, tiny_experiment

OPTIMIZERS = [
    ("train.optimizer='adam'",),
    ("train.optimizer='sgd'", "train.momentum=0.9"),
    ("train.optimizer='adagrad'",),
]


class Crash(Exception):
    """Stands for a process dying mid-run."""


def on_batch(monkeypatch, action, at: int) -> None:
    """Run ``action()`` during the ``at``-th batch (1-based, counted over the whole run)."""
    real, calls = train.clip_gradients, [0]

    def clip(grads, mode, value):
        calls[0] += 1
        if calls[0] == at:
            return action(grads, mode, value, real)
        return real(grads, mode, value)

    monkeypatch.setattr(train, "clip_gradients", clip)


def send(*signums):
    def action(grads, mode, value, real):
        for s in signums:
            signal.raise_signal(s)
        return real(grads, mode, value)

    return action


def crash(grads, mode, value, real):
    raise Crash("killed")


def reference(tmp_path, *sets, plugins=()):
    exp, registry = tiny_experiment(tmp_path, *sets, plugins=plugins)
    return run_experiment(exp, registry, out_root=tmp_path / "reference")[1].path


def started(tmp_path, monkeypatch, action, at, *sets, expect=RunInterrupted, plugins=()):
    """A run that ``action`` stops at batch ``at``; return its directory."""
    exp, registry = tiny_experiment(tmp_path, *sets, plugins=plugins)
    on_batch(monkeypatch, action, at)
    with pytest.raises(expect):
        run_experiment(exp, registry, out_root=tmp_path / "stopped")
    monkeypatch.undo()
    (path,) = (tmp_path / "stopped").iterdir()
    return path


def resumed(tmp_path, path, *sets, plugins=()):
    _, registry = tiny_experiment(tmp_path, *sets, plugins=plugins)
    summary, run_dir = resume_experiment(path, registry)
    assert run_dir.path == path and summary["status"] == "finished"
    return path


@pytest.mark.parametrize("sets", OPTIMIZERS, ids=["adam", "sgd-momentum", "adagrad"])
@pytest.mark.parametrize("at", [7, 2 * BATCHES_PER_EPOCH, 3 * BATCHES_PER_EPOCH + 1])
def test_sigint_between_batches_then_resume_is_exact(tmp_path, monkeypatch, sets, at):
    path = started(tmp_path, monkeypatch, send(signal.SIGINT), at, *sets)
    s = RunDir(path).read_summary()
    assert s["status"] == "interrupted" and "SIGINT" in s["stop_reason"]
    ckpt = RunDir(path).load_checkpoint()
    done = at // BATCHES_PER_EPOCH
    assert ckpt.state.epoch == done
    mid = at % BATCHES_PER_EPOCH
    assert (ckpt.state.position.batches_done if ckpt.state.position else 0) == mid
    assert_same_outcome(resumed(tmp_path, path, *sets), reference(tmp_path, *sets))


def test_sigterm_is_reported_with_its_exit_status(tmp_path, monkeypatch):
    exp, registry = tiny_experiment(tmp_path)
    on_batch(monkeypatch, send(signal.SIGTERM), 5)
    with pytest.raises(RunInterrupted) as info:
        run_experiment(exp, registry, out_root=tmp_path / "runs")
    assert info.value.exit_code == 143
    assert "rnnlab resume" in str(info.value)


def test_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    path = started(
        tmp_path, monkeypatch, send(signal.SIGINT, signal.SIGINT), 2 * BATCHES_PER_EPOCH + 4
    )
    assert RunDir(path).read_summary()["status"] == "interrupted"
    assert RunDir(path).load_checkpoint().state.epoch == 2  # the one written after epoch 2
    assert_same_outcome(resumed(tmp_path, path), reference(tmp_path))


@pytest.mark.parametrize(
    "sets",
    [(), ("train.checkpoint_every=0", "train.checkpoint_seconds=1e-9")],
    ids=["every-epoch", "every-batch-by-time"],
)
def test_crash_then_resume_from_last_checkpoint_is_exact(tmp_path, monkeypatch, sets):
    at = 2 * BATCHES_PER_EPOCH + 6
    path = started(tmp_path, monkeypatch, crash, at, *sets, expect=Crash)
    assert RunDir(path).read_summary()["status"] == "failed"
    state = RunDir(path).load_checkpoint().state
    if sets:  # a checkpoint after every batch: the last one is mid-epoch
        assert (state.epoch, state.position.batches_done) == (2, 5)
    else:
        assert (state.epoch, state.position) == (2, None)
    assert len(RunDir(path).read_metrics()) == 2
    assert_same_outcome(resumed(tmp_path, path, *sets), reference(tmp_path, *sets))


WHOLE_EPOCH_BACKEND = '''
from rnnlab.hookspecs import hookimpl
from rnnlab.nn.model import Model
from rnnlab.specs import BackendSpec, Split
from rnnlab.training.loop import reference_epoch
from rnnlab_numpy.backend import NumpyBackend


class WholeEpochs(NumpyBackend):
    """The NumPy backend, running whole epochs itself (as a compiled backend would)."""

    name = "whole"
    # it runs the reference loop itself: it implements every feature this test's plan uses
    epoch_features = frozenset({
        "cell=rnn", "nonlinearity=tanh", "dtype=float64", "hidden_size", "layers", "batch_size",
        "learning_rate", "beta1", "beta2", "eps", "grad_clip_value", "grad_clip=norm",
        "optimizer=adam", "loss=mse", "target=last"})

    def epoch_runner(self, plan):
        def run(params, optimizer, x, y, order, lr):
            model = Model(plan.model, self, params)
            return reference_epoch(model, optimizer, plan, Split(x, y), order, lr)
        return run


@hookimpl
def register_backends():
    return [BackendSpec("whole", WholeEpochs)]
'''


def test_backend_epoch_runner_stops_at_the_end_of_the_epoch(tmp_path, monkeypatch):
    plugin = tmp_path / "whole.py"
    plugin.write_text(WHOLE_EPOCH_BACKEND)
    sets = ("train.backend='whole'",)
    path = started(
        tmp_path, monkeypatch, send(signal.SIGINT), BATCHES_PER_EPOCH + 3, *sets, plugins=[plugin]
    )
    state = RunDir(path).load_checkpoint().state
    assert (state.epoch, state.position) == (2, None)  # the epoch ran to its end
    assert_same_outcome(
        resumed(tmp_path, path, *sets, plugins=[plugin]),
        reference(tmp_path, *sets, plugins=[plugin]),
    )


def test_raising_epochs_continues_like_a_longer_run(tmp_path):
    exp, registry = tiny_experiment(tmp_path)
    path = run_experiment(exp, registry, out_root=tmp_path / "short")[1].path
    with pytest.raises(RnnlabError, match="already finished"):
        resume_experiment(path, registry)
    longer, registry = tiny_experiment(tmp_path, "train.epochs=6")
    resume_experiment(path, registry, experiment=longer)
    assert_same_outcome(path, reference(tmp_path, "train.epochs=6"))


@pytest.mark.parametrize(
    "change",
    ["train.learning_rate=0.03", "model.hidden_size=9", "task.window=6", "experiment.seed=4"],
)
def test_resume_refuses_a_different_experiment(tmp_path, monkeypatch, change):
    path = started(tmp_path, monkeypatch, send(signal.SIGINT), 13)
    exp, registry = tiny_experiment(tmp_path, change)
    with pytest.raises(RnnlabError, match=change.split("=")[0].replace(".", r"\.")):
        resume_experiment(path, registry, experiment=exp)


def test_cosine_schedule_pins_the_number_of_epochs(tmp_path, monkeypatch):
    path = started(tmp_path, monkeypatch, send(signal.SIGINT), 13, "train.schedule='cosine'")
    exp, registry = tiny_experiment(tmp_path, "train.schedule='cosine'", "train.epochs=9")
    with pytest.raises(RnnlabError, match="train.epochs"):
        resume_experiment(path, registry, experiment=exp)


def test_checkpoint_interval_may_change_on_resume(tmp_path, monkeypatch):
    path = started(tmp_path, monkeypatch, send(signal.SIGINT), 13)
    exp, registry = tiny_experiment(tmp_path, "train.checkpoint_every=3")
    resume_experiment(path, registry, experiment=exp)
    assert_same_outcome(path, reference(tmp_path))


def test_nan_gradient_stops_with_epoch_and_batch_and_keeps_the_good_checkpoint(
    tmp_path, monkeypatch
):
    def nan_norm(grads, mode, value, real):
        return float("nan")

    path = started(tmp_path, monkeypatch, nan_norm, BATCHES_PER_EPOCH + 3, expect=TrainingDiverged)
    summary = RunDir(path).read_summary()
    assert summary["status"] == "diverged"
    for words in ("epoch 2", "batch 3 of 10", "learning_rate", "grad_clip_value"):
        assert words in summary["stop_reason"]
    ckpt = RunDir(path).load_checkpoint()
    assert ckpt.state.epoch == 1
    assert all(np.all(np.isfinite(p)) for p in ckpt.params.values())


# the overflow on the way to divergence is the point of the test, not noise for the summary
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_real_divergence_is_caught_before_it_reaches_the_parameters(tmp_path):
    exp, registry = tiny_experiment(
        tmp_path, "train.optimizer='sgd'", "train.grad_clip='none'", "train.learning_rate=1e6"
    )
    with pytest.raises(TrainingDiverged, match="grad_clip") as info:
        run_experiment(exp, registry, out_root=tmp_path / "runs")
    assert info.value.exit_code == 3
    (path,) = (tmp_path / "runs").iterdir()
    _, params, _ = outcome(path)
    assert all(np.all(np.isfinite(p)) for p in params.values())


def test_stateful_chargen_run_resumes_exactly(tmp_path, monkeypatch):
    """Truncated BPTT over streams (no shuffle, state carried): stops at the end of the epoch."""

    from rnnlab.cli.common import load_experiment
    from tests.support.paths import EXPERIMENTS

    config = str(EXPERIMENTS / "chargen.toml")
    sets = ["train.epochs=4"]
    exp, registry = load_experiment(config, sets)
    assert exp.task.options["mode"] == "stateful"
    real, calls = train.stateful_epoch, [0]

    def epoch(*args):
        calls[0] += 1
        if calls[0] == 2:
            signal.raise_signal(signal.SIGINT)
        return real(*args)

    monkeypatch.setattr(train, "stateful_epoch", epoch)
    with pytest.raises(RunInterrupted):
        run_experiment(exp, registry, out_root=tmp_path / "stopped")
    monkeypatch.undo()
    (path,) = (tmp_path / "stopped").iterdir()
    assert RunDir(path).load_checkpoint().state.epoch == 2
    resume_experiment(path, registry)
    exp, registry = load_experiment(config, sets)
    ref = run_experiment(exp, registry, out_root=tmp_path / "reference")[1].path
    assert_same_outcome(path, ref)
