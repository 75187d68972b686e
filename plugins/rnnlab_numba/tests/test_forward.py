"""The numba backend's compiled forward pass (plugins/rnnlab_numba/forward.py) against the NumPy
reference's ``Model.outputs``: head outputs and the final state of every layer and direction, for
every cell, 1 and 2 layers, one and two directions, both targets, with and without lengths and an
initial state; a block boundary inside the batch; the thread count; and whole runs on numba,
whose evaluation goes through it and gives the losses the composed layers give."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rnnlab.cells import cell_spec
from rnnlab.experiment.config import ModelConfig
from rnnlab.nn.model import Model, directions, model_features
from rnnlab.testing import fill_padding, reference_backend, relative_error, sized_problem
from rnnlab.training.loop import RunInfo, evaluate, fit
from rnnlab.training.session import prepare
from tests.nn.test_lengths import experiment as varlen
from tests.support.chargen import SENTENCE
from tests.support.chargen import experiment as chargen
from tests.support.tiny_runs import tiny_experiment

pytest.importorskip("numba")
from rnnlab_numba import forward  # noqa: E402
from rnnlab_numba.backend import NumbaBackend  # noqa: E402

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def config(cell="lstm", nonlinearity="tanh", layers=2, bidirectional=True, dtype="float64"):
    return ModelConfig(
        cell=cell,
        hidden_size=5,
        layers=layers,
        nonlinearity=nonlinearity,
        bidirectional=bidirectional,
        dtype=dtype,
    )


def random_state(cfg, N, rng):
    """A non-zero initial state of every layer and direction, as Model.zero_state shapes it."""
    shape, tensors = (N, cfg.hidden_size), len(cell_spec(cfg.cell).state)
    return [
        tuple(rng.normal(size=shape).astype(cfg.dtype) for _ in range(tensors))
        for _ in range(cfg.layers * directions(cfg))
    ]


def compare(cfg, target, *, N=37, T=6, lengths=False, with_state=False, seed=0, fwd=None):
    """The compiled forward's outputs and final states against the reference's; the worst
    relative error over them."""
    params, x, _, lens = sized_problem(cfg, "mse", target, T=T, N=N, seed=seed, lengths=lengths)
    if lengths:  # whatever lies in the padding must not reach a result
        x, _ = fill_padding(x, x, lens, "every", np.nan)
    state = random_state(cfg, N, np.random.default_rng(seed + 1)) if with_state else None
    want, want_final = Model(cfg, reference_backend(), params).outputs(x, target, state, lens)
    fwd = fwd or forward.ForwardRunner(cfg)
    got, got_final = fwd(params, x, target, lengths=lens, state=state)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert len(got_final) == len(want_final)
    errors = [relative_error(got, want)]
    for got_state, want_state in zip(got_final, want_final, strict=True):
        assert len(got_state) == len(want_state)
        errors += [relative_error(g, w) for g, w in zip(got_state, want_state, strict=True)]
    assert all(np.isfinite(errors)), errors
    return max(errors)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell,nonlinearity", CELLS, ids=["rnn-tanh", "rnn-relu", "lstm", "gru"])
def test_forward_matches_the_reference(cell, nonlinearity, layers, bidirectional, dtype):
    cfg = config(cell, nonlinearity, layers, bidirectional, dtype)
    fwd = forward.ForwardRunner(cfg)
    for target in ("last", "every"):
        for lengths in (False, True):
            for with_state in (False, True):
                error = compare(cfg, target, lengths=lengths, with_state=with_state, fwd=fwd)
                case = f"{target} lengths={lengths} state={with_state}"
                assert error <= TOLERANCE[dtype], f"{case}: {error:.2e}"


@pytest.mark.parametrize("N", [1, 5, 32, 33, 70])
@pytest.mark.parametrize("target", ["last", "every"])
def test_blocks_of_rows_split_anywhere(N, target):
    """Batches smaller than a block, exactly one block, and blocks ending inside the batch."""
    assert forward.BLOCK == 32
    for lengths in (False, True):
        error = compare(config(), target, N=N, T=9, lengths=lengths, with_state=True, seed=N)
        assert error <= 1e-12, f"lengths={lengths}: {error:.2e}"


def test_one_step_and_equal_lengths():
    cfg = config("gru")
    assert compare(cfg, "every", T=1, N=3, with_state=True) <= 1e-12
    params, x, _, _ = sized_problem(cfg, "mse", "every", T=4, N=35)
    fwd = forward.ForwardRunner(cfg)
    full = fwd(params, x, "every")
    same = fwd(params, x, "every", lengths=np.full(35, 4))
    assert np.array_equal(full[0], same[0])


@pytest.mark.parametrize("target", ["last", "every"])
def test_the_thread_count_changes_no_bit(target):
    cfg = config("lstm")
    params, x, _, lens = sized_problem(cfg, "mse", target, T=8, N=150, lengths=True)
    state = random_state(cfg, 150, np.random.default_rng(1))
    results = [
        forward.ForwardRunner(cfg, threads=threads)(params, x, target, lens, state)
        for threads in (1, 2, 3, 0)
    ]
    for out, final in results[1:]:
        assert np.array_equal(out, results[0][0])
        for a, b in zip(final, results[0][1], strict=True):
            assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_threads_follow_size_and_numba(monkeypatch):
    fwd = forward.ForwardRunner(config())
    assert fwd.workers(10, 100) == 1  # small problems stay on one thread
    assert fwd.workers(10**9, 1) == 1  # one block: one thread
    monkeypatch.setattr(forward.numba, "get_num_threads", lambda: 1)
    assert fwd.workers(10**9, 100) == 1  # never more than numba's threads (sweeps pin 1)
    fwd.threads = 4
    assert fwd.workers(10, 100) == 1
    monkeypatch.setattr(forward.numba, "get_num_threads", lambda: 8)
    assert fwd.workers(10, 100) == 4 and fwd.workers(10, 3) == 3


def test_the_backend_declares_what_it_runs():
    backend = NumbaBackend()
    for cell, nonlinearity in CELLS:
        for dtype in ("float64", "float32"):
            cfg = config(cell, nonlinearity, 3, True, dtype)
            assert model_features(cfg) <= backend.forward_features
            assert isinstance(backend.forward_runner(cfg), forward.ForwardRunner)
    assert "lengths" in backend.forward_features
    # dropout changes nothing in evaluation; a feature it does not know is never covered
    assert model_features(replace(config(), dropout=0.5)) <= backend.forward_features
    assert "cell=mycell" not in backend.forward_features
    assert backend.forward_runner(replace(config(), cell="mycell")) is None


# -- whole runs: evaluation goes through the compiled forward, with the same losses ------------
def run(exp, registry, monkeypatch, compiled: bool):
    """Train ``exp`` on numba with the compiled forward (counting its calls) or without it
    (the core composes numba's layer kernels); the history, final metrics and call count."""
    calls = []
    with monkeypatch.context() as patch:
        if compiled:
            call = forward.ForwardRunner.__call__

            def counted(self, *args, **kwargs):
                calls.append(args[2] if len(args) > 2 else kwargs["target"])
                return call(self, *args, **kwargs)

            patch.setattr(forward.ForwardRunner, "__call__", counted)
        else:
            patch.setattr(NumbaBackend, "forward_features", frozenset())
        session = prepare(exp, registry)
        history = fit(session, registry, RunInfo(exp, session.dataset, session.model))
        metrics = evaluate(session)
    return history, metrics, len(calls)


def assert_same_evaluation(a, b, rtol=1e-12):
    (ha, ma, _), (hb, mb, _) = a, b
    assert [r["epoch"] for r in ha] == [r["epoch"] for r in hb]
    for ra, rb in zip(ha, hb, strict=True):
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], rel=rtol, abs=0)
        assert ra["loss"] == pytest.approx(rb["loss"], rel=rtol, abs=0)
    assert ma.keys() == mb.keys()
    for split in ma:
        for key, value in ma[split].items():
            assert value == pytest.approx(mb[split][key], rel=rtol, abs=1e-300), (split, key)


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: tiny_experiment(tmp, "train.backend=numba", "train.epochs=2"),
        lambda tmp: varlen(
            tmp,
            "train.backend=numba",
            "model.cell=lstm",
            "model.bidirectional=true",
            "model.layers=2",
            target="every",
        ),
        lambda tmp: chargen(
            tmp,
            {"text": SENTENCE, "repeat": 20, "mode": "stateful", "window": 7},
            {"layers": 2},
            {"backend": "numba", "epochs": 2},
        ),
    ],
    ids=["sine", "lengths-bidirectional-lstm", "chargen-stateful"],
)
def test_a_run_on_numba_evaluates_through_it(tmp_path, monkeypatch, make):
    exp, registry = make(tmp_path)
    composed = run(exp, registry, monkeypatch, compiled=False)
    compiled = run(exp, registry, monkeypatch, compiled=True)
    assert composed[2] == 0 and compiled[2] > 0
    assert_same_evaluation(compiled, composed)
