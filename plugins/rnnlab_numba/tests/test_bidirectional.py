"""Numba trains bidirectional stacks and dropout like the NumPy reference: its fused epoch
(both directions, [forward ; reverse] outputs, the head on [h_n forward ; h_n reverse] for
target "last", seeded dropout masks between layers) against the core's reference loop per
epoch, and whole runs to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Model
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.testing import check_training_agreement, reference_backend
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan, prepare
from tests.nn.test_lengths import experiment
from tests.support.epoch_checks import assert_same_state, twin_params

pytest.importorskip("numba")


@pytest.mark.parametrize(
    "sets",
    [
        ("model.bidirectional=true",),
        ("model.bidirectional=true", "model.dropout=0.3"),
        ("model.dropout=0.3",),
    ],
    ids=["bidirectional", "bidirectional-dropout", "dropout"],
)
@pytest.mark.parametrize("target", ["every", "last"])
def test_numba_matches_numpy_on_a_bidirectional_gru_with_lengths(tmp_path, sets, target):
    exp, registry = experiment(tmp_path, *sets, target=target, cell="gru")
    diffs = check_training_agreement("numba", exp, registry=registry, rtol=1e-9)
    print(f"gru {target} {' '.join(sets)}: {diffs}")


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_numba_matches_numpy_bidirectional_with_dropout(tmp_path, cell):
    exp, registry = experiment(
        tmp_path, "model.bidirectional=true", "model.dropout=0.3", target="every", cell=cell
    )
    diffs = check_training_agreement("numba", exp, registry=registry, rtol=1e-9)
    print(f"{cell}: {diffs}")


def fused_cases():
    """Every cell meets each target and lengths; one, two and three layers (dropout on three)."""
    out = []
    for i, cell in enumerate(["rnn", "lstm", "gru"]):
        for j, (layers, dropout) in enumerate([(1, 0.0), (2, 0.0), (3, 0.3)]):
            target = ("last", "every")[(i + j) % 2]
            for lengths in (False, True):
                out.append((cell, layers, dropout, target, lengths))
    return out


@pytest.mark.parametrize("cell,layers,dropout,target,lengths", fused_cases())
def test_fused_bidirectional_epoch_matches_the_reference(cell, layers, dropout, target, lengths):
    cfg = ModelConfig(cell=cell, layers=layers, hidden_size=5, bidirectional=True, dropout=dropout)
    train = TrainConfig(batch_size=4, learning_rate=0.05, grad_clip="norm", grad_clip_value=1.0)
    loss = "xent" if layers == 2 else "mse"
    plan = EpochPlan(cfg, train, loss, target, lengths=lengths)
    rng = np.random.default_rng(1)
    T, N = 6, 11
    lens = rng.integers(1, T + 1, size=N) if lengths else None
    x = rng.normal(size=(T, N, 3))
    lead = (N,) if target == "last" else (T, N)
    y = rng.normal(size=(*lead, 2)) if loss == "mse" else rng.integers(0, 2, size=lead)
    if lengths:
        x[np.arange(T)[:, None] >= lens[None, :]] = 1e6  # padding must never reach a result
    split = Split(x, y, lens)
    params, opt, ref_params, ref_opt = twin_params(plan, 3, 2, rng)
    runner = epoch_runner(Registry().backend("numba").load(), plan)
    assert runner is not None
    ref_model = Model(cfg, reference_backend(), ref_params)
    mine, theirs = np.random.default_rng(4), np.random.default_rng(4)
    extra = {} if lens is None else {"lengths": lens}
    if dropout:
        extra["dropout_rng"] = mine
    for e in range(2):
        order = np.random.default_rng(e).permutation(N)
        got = runner(params, opt, x, y, order, 0.05, **extra)
        want = reference_epoch(ref_model, ref_opt, plan, split, order, 0.05, dropout_rng=theirs)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-10)


@pytest.mark.parametrize("sets", [("model.bidirectional=true",), ("model.dropout=0.3",)])
def test_the_whole_runs_above_go_through_the_fused_epoch(tmp_path, sets):
    exp, registry = experiment(tmp_path, *sets, target="last", cell="gru")
    plan = prepare(exp, registry).plan
    assert {"bidirectional", "dropout"} & plan.features()
    assert epoch_runner(Registry().backend("numba").load(), plan) is not None
