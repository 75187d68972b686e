"""The keywords of the epoch-runner contract and the compiled-forward contract, checked with
runners written in Python from the contract's text: ``dropout_rng`` (masks drawn as the core
draws them), ``chunk_length`` (a stateful epoch taken over, the state carried between chunks),
``train.threads`` (no plan feature), and ``Backend.forward_runner`` (evaluation through the
backend when it covers the model)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.model import Model, dropout_masks, model_features
from rnnlab.nn.optim import clip_gradients
from rnnlab.specs import Split
from rnnlab.testing import reference_backend
from rnnlab.training.loop import RunInfo, fit, reference_epoch
from rnnlab.training.session import prepare
from tests.support.chargen import SENTENCE
from tests.support.chargen import experiment as chargen
from tests.support.tiny_runs import tiny_experiment

Reference = type(reference_backend())


class ContractRunner(Reference):
    """The reference backend with an epoch runner written from ``Backend.epoch_runner``'s
    text, recording the keywords it was called with."""

    name = "contract"
    calls: list[dict] = []

    def epoch_runner(self, plan):
        def run(params, optimizer, x, y, order, lr, **keywords):
            type(self).calls.append({"order": order, **keywords})
            model = Model(plan.model, self, params)
            if "chunk_length" in keywords:
                return stateful(model, optimizer, plan, x, y, lr, **keywords)
            rng = keywords.get("dropout_rng")
            return reference_epoch(model, optimizer, plan, Split(x, y), order, lr, dropout_rng=rng)

        return run


def stateful(model, optimizer, plan, x, y, lr, *, chunk_length, dropout_rng=None):
    """Chunks of ``chunk_length`` steps from step 0, the state carried, one step per chunk."""
    state, losses = None, []
    for start in range(0, x.shape[0], chunk_length):
        steps = slice(start, start + chunk_length)
        T, N = x[steps].shape[:2]
        masks = None
        if dropout_rng is not None:
            masks = dropout_masks(model.cfg, dropout_rng, T, N, x.dtype)
        loss, grads, state = model.loss_and_grads(
            x[steps], y[steps], plan.loss, "every", state, masks=masks
        )
        if plan.train.grad_clip != "none":
            clip_gradients(grads, plan.train.grad_clip, plan.train.grad_clip_value)
        optimizer.step(model.params, grads, lr)
        losses.append(loss)
    return np.array(losses)


def train(exp, registry, backend=None):
    """Train ``exp`` (with ``backend`` declaring exactly what its plan uses, when given);
    return its history without timings, its parameters and what the runner declined."""
    session = prepare(exp, registry)
    if backend is not None:
        type(backend).epoch_features = session.plan.features()
        session.backend = session.model.backend = backend
    info = RunInfo(exp, session.dataset, session.model)
    history = fit(session, registry, info)
    records = [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    return records, session.model.params, info.runner_declined


def assert_same_training(a, b):
    (ha, pa, _), (hb, pb, _) = a, b
    assert ha == hb
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)


STATEFUL = {"text": SENTENCE, "repeat": 20, "mode": "stateful", "window": 7}


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_runner_takes_over_a_stateful_epoch_exactly(tmp_path, dropout):
    """The last chunk is shorter than the others here; the epoch's loss is the mean per
    target over the chunks, as the core's own stateful epoch gives it."""
    model, settings = {"layers": 2, "dropout": dropout}, {"epochs": 2, "grad_clip": "value"}
    exp, registry = chargen(tmp_path, STATEFUL, model, settings)
    core = train(exp, registry)
    ContractRunner.calls = []
    taken = train(exp, registry, ContractRunner())
    assert len(ContractRunner.calls) == 2 and taken[2] == ()
    for call in ContractRunner.calls:
        assert call["order"] is None and call["chunk_length"] == 7
        assert ("dropout_rng" in call) == (dropout > 0)
    assert_same_training(core, taken)


def test_a_runner_draws_the_core_loops_dropout_masks(tmp_path):
    sets = ("model.layers=2", "model.dropout=0.4", "train.epochs=2")
    exp, registry = tiny_experiment(tmp_path, *sets)
    core = train(exp, registry)
    ContractRunner.calls = []
    taken = train(exp, registry, ContractRunner())
    assert [sorted(c) for c in ContractRunner.calls] == [["dropout_rng", "order"]] * 2
    assert_same_training(core, taken)


def test_threads_are_no_plan_feature_and_change_nothing(tmp_path):
    one, registry = tiny_experiment(tmp_path, "train.threads=1", "train.epochs=2")
    auto, _ = tiny_experiment(tmp_path, "train.epochs=2")
    assert prepare(one, registry).plan.features() == prepare(auto, registry).plan.features()
    assert_same_training(train(one, registry), train(auto, registry))


class CompiledForward(Reference):
    """The reference backend offering a "compiled" forward pass (the core's own composition,
    counted), declaring the features of a unidirectional model with lengths."""

    name = "compiled-forward"
    forward_calls = 0
    forward_features = frozenset()

    def forward_runner(self, model_cfg):
        def fwd(params, x, target, lengths=None, state=None):
            type(self).forward_calls += 1
            model = Model(model_cfg, reference_backend(), params)
            return model.outputs(x, target, state, lengths)

        return fwd


@pytest.mark.parametrize("bidirectional", [False, True])
def test_evaluation_goes_through_a_compiled_forward_that_covers_the_model(tmp_path, bidirectional):
    sets = ("train.epochs=2", f"model.bidirectional={str(bidirectional).lower()}")
    exp, registry = tiny_experiment(tmp_path, *sets)
    plain = train(exp, registry)
    session = prepare(exp, registry)
    unidirectional = model_features(session.model.cfg) - {"bidirectional"}
    CompiledForward.forward_features = unidirectional | {"lengths"}
    CompiledForward.forward_calls = 0
    session.backend = session.model.backend = CompiledForward()
    history = fit(session, registry, RunInfo(exp, session.dataset, session.model))
    # validation after each epoch goes through it only when it covers the model
    assert CompiledForward.forward_calls == (0 if bidirectional else 2)
    records = [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    assert records == plain[0]
