"""The numba backend's fused stateful (truncated BPTT) epoch and its dropout, against the core's
references on the NumPy backend: ``rnnlab.training.stateful.stateful_epoch`` (chunks of steps, the
state
carried, one optimizer step per chunk) and ``rnnlab.training.loop.reference_epoch`` with the same
seeded
dropout masks; and whole stateful chargen runs against numpy.

A stateful epoch and a windowed one share the compiled signature, so the new compilations here
are the dropout kernels (one per cell and dtype) and the threaded one.
"""

import numpy as np
import pytest

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Model
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.testing import check_training_agreement, reference_backend
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan, prepare
from rnnlab.training.stateful import stateful_epoch
from tests.support.chargen import SENTENCE
from tests.support.chargen import experiment as chargen
from tests.support.epoch_checks import assert_same_state, twin_params

pytest.importorskip("numba")

CELLS = ["rnn", "lstm", "gru"]
TRAINS = [
    dict(optimizer="adagrad", grad_clip="value", grad_clip_value=5.0),  # min-char-rnn's
    dict(optimizer="adam", grad_clip="norm", grad_clip_value=0.5),
    dict(optimizer="sgd", momentum=0.9, grad_clip="none"),
]


@pytest.fixture(scope="module")
def backend():
    return Registry().backend("numba").load()


def plan_of(cell, layers, loss, train, dtype="float64", dropout=0.0, chunk_length=4, **fields):
    cfg = ModelConfig(cell=cell, layers=layers, hidden_size=5, dtype=dtype, dropout=dropout)
    tr = TrainConfig(batch_size=4, learning_rate=0.05, **train)
    target = "every" if chunk_length else fields.pop("target")
    return EpochPlan(cfg, tr, loss, target, chunk_length=chunk_length, **fields)


def streams(dtype, loss, S, B, *, n_in=3, n_out=3, seed=3):
    """B parallel streams of S steps, a target at every step."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(S, B, n_in)).astype(dtype)
    if loss == "xent":
        y = rng.integers(0, n_out, size=(S, B))
    else:
        y = rng.normal(size=(S, B, n_out)).astype(dtype)
    return rng, Split(x, y), n_in, n_out


def run_stateful(backend, plan, split, rng, n_in, n_out, k, *, dropout_seed=None, epochs=2):
    """``epochs`` stateful epochs by the fused runner and by ``stateful_epoch`` from the same
    start (and the same dropout seed): both per-chunk losses and final states."""
    params, opt, ref_params, ref_opt = twin_params(plan, n_in, n_out, rng)
    runner = epoch_runner(backend, plan)
    assert runner is not None, plan.uncovered(backend.epoch_features)
    ref_model = Model(plan.model, reference_backend(), ref_params)
    keywords, ref_rng = {}, None
    if dropout_seed is not None:
        keywords["dropout_rng"] = np.random.default_rng(dropout_seed)
        ref_rng = np.random.default_rng(dropout_seed)
    got, want = [], []
    for _ in range(epochs):
        got.append(runner(params, opt, split.x, split.y, None, 0.05, chunk_length=k, **keywords))
        want.append(stateful_epoch(ref_model, ref_opt, plan, split, k, 0.05, ref_rng))
    if ref_rng is not None:  # the runner drew exactly the masks the reference drew
        assert keywords["dropout_rng"].bit_generator.state == ref_rng.bit_generator.state
    return (got, params, opt), (want, ref_params, ref_opt)


def stateful_cases():
    out = []
    for i, cell in enumerate(CELLS):
        for j, (layers, B) in enumerate([(1, 1), (2, 1), (1, 3), (2, 6)]):
            out.append((cell, layers, B, ("xent", "mse")[(i + j) % 2], TRAINS[(i + j) % 3]))
    return out


@pytest.mark.parametrize("cell,layers,B,loss,train", stateful_cases())
def test_stateful_epoch_matches_the_reference_float64(backend, cell, layers, B, loss, train):
    """15 steps in chunks of 4: the last chunk is 3 steps; the state carried across epochs'
    chunks starts from zeros again each epoch."""
    plan = plan_of(cell, layers, loss, train)
    rng, split, n_in, n_out = streams("float64", loss, 15, B)
    (got, params, opt), (want, ref_params, ref_opt) = run_stateful(
        backend, plan, split, rng, n_in, n_out, 4
    )
    assert [len(g) for g in got] == [4, 4]
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-12)
    assert opt.steps == ref_opt.steps == 8
    assert_same_state(params, opt, ref_params, ref_opt, 1e-11)


@pytest.mark.parametrize("cell,layers,B,loss,train", stateful_cases()[::3])
def test_stateful_epoch_matches_the_reference_float32(backend, cell, layers, B, loss, train):
    plan = plan_of(cell, layers, loss, train, "float32")
    rng, split, n_in, n_out = streams("float32", loss, 15, B)
    (got, params, opt), (want, ref_params, ref_opt) = run_stateful(
        backend, plan, split, rng, n_in, n_out, 4
    )
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-4)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-4)


def test_a_chunk_as_long_as_the_streams_is_one_windowed_batch(backend):
    """k = S: one chunk from zeros, which is the windowed epoch over the same rows."""
    plan = plan_of("lstm", 2, "mse", TRAINS[1])
    rng, split, n_in, n_out = streams("float64", "mse", 6, 4)
    (got, *_), (want, *_) = run_stateful(backend, plan, split, rng, n_in, n_out, 6, epochs=1)
    assert got[0].shape == (1,)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13)


@pytest.mark.parametrize("cell", CELLS)
def test_stateful_epoch_with_dropout_draws_the_references_masks(backend, cell):
    plan = plan_of(cell, 3, "xent", TRAINS[0], dropout=0.4)
    rng, split, n_in, n_out = streams("float64", "xent", 11, 2)
    (got, params, opt), (want, ref_params, ref_opt) = run_stateful(
        backend, plan, split, rng, n_in, n_out, 3, dropout_seed=7
    )
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-12)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-11)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("target", ["last", "every"])
def test_windowed_epoch_with_dropout_matches_the_reference(backend, cell, lengths, target):
    """Batches of 4 of 11 sequences (the last batch is 3), each batch's masks drawn in the
    core's row order while the kernels run its rows sorted by length."""
    plan = plan_of(
        cell, 3, "mse", TRAINS[1], dropout=0.3, chunk_length=0, target=target, lengths=lengths
    )
    rng = np.random.default_rng(3)
    T, N = 6, 11
    lens = rng.integers(1, T + 1, size=N) if lengths else None
    x = rng.normal(size=(T, N, 3))
    y = rng.normal(size=(N, 2) if target == "last" else (T, N, 2))
    if lengths:
        x[np.arange(T)[:, None] >= lens[None, :]] = 1e6  # padding must never reach a result
    split = Split(x, y, lens)
    params, opt, ref_params, ref_opt = twin_params(plan, 3, 2, rng)
    runner = epoch_runner(backend, plan)
    ref_model = Model(plan.model, reference_backend(), ref_params)
    mine, theirs = np.random.default_rng(11), np.random.default_rng(11)
    extra = {} if lens is None else {"lengths": lens}
    for e in range(2):
        order = np.random.default_rng(e).permutation(N)
        got = runner(params, opt, x, y, order, 0.05, dropout_rng=mine, **extra)
        want = reference_epoch(ref_model, ref_opt, plan, split, order, 0.05, dropout_rng=theirs)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert mine.bit_generator.state == theirs.bit_generator.state
    assert_same_state(params, opt, ref_params, ref_opt, 1e-11)


def test_dropout_changes_the_fused_epoch(backend):
    """The masks are applied: the same epoch without dropout ends elsewhere."""
    ends = []
    for dropout in (0.0, 0.5):
        plan = plan_of("gru", 2, "xent", TRAINS[0], dropout=dropout)
        rng, split, n_in, n_out = streams("float64", "xent", 9, 2)
        params, opt, _, _ = twin_params(plan, n_in, n_out, rng)
        keywords = {"dropout_rng": np.random.default_rng(0)} if dropout else {}
        epoch_runner(backend, plan)(params, opt, split.x, split.y, None, 0.05, chunk_length=3,
                                    **keywords)  # fmt: skip
        ends.append(params["rnn.weight_ih_l1"].copy())
    assert not np.allclose(*ends)


STATEFUL = {"text": SENTENCE, "repeat": 20, "mode": "stateful", "window": 7}


@pytest.mark.parametrize(
    "model,batch_size",
    [
        ({"cell": "rnn"}, 1),
        ({"cell": "lstm", "layers": 2}, 3),
        ({"cell": "gru", "layers": 2, "dropout": 0.3}, 2),
    ],
    ids=["rnn-b1", "lstm-2layers-b3", "gru-dropout-b2"],
)
def test_numba_runs_stateful_chargen_like_numpy(tmp_path, model, batch_size):
    """Whole runs (training through the fused runner, evaluation carrying the state through
    each split) agree with numpy to 1e-9; the runner did take over the epochs."""
    settings = {"epochs": 2, "batch_size": batch_size, "optimizer": "adagrad",
                "grad_clip": "value", "grad_clip_value": 5.0}  # fmt: skip
    exp, registry = chargen(tmp_path, STATEFUL, model, settings)
    session = prepare(exp, registry)
    assert session.plan.chunk_length == 7
    assert not session.plan.uncovered(Registry().backend("numba").load().epoch_features)
    check_training_agreement("numba", exp, registry=registry, rtol=1e-9)
