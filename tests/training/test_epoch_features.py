"""A backend's epoch runner is a fast path that fails safe: the core hands it a plan only when
the runner declares every feature the plan uses, and otherwise trains with its own loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Model
from rnnlab.specs import Split
from rnnlab.testing import reference_backend
from rnnlab.training.loop import RunInfo, fit, reference_epoch
from rnnlab.training.session import EpochPlan, prepare
from tests.support.tiny_runs import tiny_experiment


@dataclasses.dataclass(frozen=True)
class PlanWithDropout(EpochPlan):
    """A plan as it would be once a field is added to EpochPlan (here: dropout)."""

    dropout: float = 0.0


class Counting(type(reference_backend())):
    """The reference backend with an epoch runner (running the reference loop) that counts
    its epochs and declares exactly what today's tiny plan uses."""

    name = "counting"
    epochs_run = 0

    def epoch_runner(self, plan):
        def run(params, optimizer, x, y, order, lr):
            type(self).epochs_run += 1
            model = Model(plan.model, self, params)
            return reference_epoch(model, optimizer, plan, Split(x, y), order, lr)

        return run


def test_features_come_from_every_field():
    plan = EpochPlan(
        ModelConfig(cell="lstm"), TrainConfig(momentum=0.9, weight_decay=0.0), "xent", "every"
    )
    features = plan.features()
    assert {
        "cell=lstm",
        "loss=xent",
        "target=every",
        "optimizer=adam",
        "momentum",
        "hidden_size",
    } <= features
    assert "weight_decay" not in features  # off (0) is no feature
    assert not any(f.startswith(("backend", "epochs", "checkpoint")) for f in features)
    assert PlanWithDropout(plan.model, plan.train, "xent", "every", 0.5).features() == (
        features | {"dropout"}
    )


def run_tiny(tmp_path, plan_type=None, **extra):
    exp, registry = tiny_experiment(tmp_path, "train.epochs=2")
    session = prepare(exp, registry)
    session.backend = session.model.backend = Counting()
    Counting.epoch_features = EpochPlan.features(session.plan)
    if plan_type is not None:
        p = session.plan
        session.plan = plan_type(p.model, p.train, p.loss, p.target, **extra)
    Counting.epochs_run = 0
    info, messages = RunInfo(exp, session.dataset, session.model), []
    fit(session, registry, info, on_status=messages.append)
    return session, info, messages


def test_runner_runs_a_plan_it_covers(tmp_path):
    _, info, messages = run_tiny(tmp_path)
    assert Counting.epochs_run == 2 and info.runner_declined == ()
    assert not any("core loop" in m for m in messages)


@pytest.mark.parametrize("dropout,used", [(0.0, True), (0.5, False)])
def test_a_plan_field_no_runner_declares_is_trained_by_the_core_loop(tmp_path, dropout, used):
    session, info, messages = run_tiny(tmp_path, PlanWithDropout, dropout=dropout)
    if used:  # the new feature is off: the plan uses nothing undeclared
        assert Counting.epochs_run == 2 and info.runner_declined == ()
        return
    assert Counting.epochs_run == 0
    assert info.runner_declined == ("dropout",)
    said = [m for m in messages if "core loop" in m]
    assert len(said) == 1 and "dropout" in said[0] and "'counting'" in said[0]
    assert all(np.all(np.isfinite(p)) for p in session.model.params.values())


def test_a_backend_that_declares_nothing_is_never_asked_for_a_runner(tmp_path):
    class Undeclared(Counting):
        epoch_features = frozenset()

        def epoch_runner(self, plan):
            raise AssertionError("asked for a runner it does not declare")

    exp, registry = tiny_experiment(tmp_path, "train.epochs=1")
    session = prepare(exp, registry)
    session.backend, messages = Undeclared(), []
    fit(session, registry, RunInfo(exp, session.dataset, session.model), on_status=messages.append)
    said = [m for m in messages if "core loop" in m]
    assert len(said) == 1 and "declares no epoch_features" in said[0]
