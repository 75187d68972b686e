"""The numba backend's mingru, minlstm, indrnn and lru against the NumPy reference: one layer
from a non-zero state (complex for the lru), with and without lengths, in both precisions; the
fused epoch against the core's loop (every nonlinearity, lengths, two layers, bidirectional,
dropout, stateful); whole training runs (lengths, bidirectional, dropout) to 1e-9. The thread
count: test_epoch.py; the adding experiments: test_cells.py (every cell). Gradients against
finite differences and agreement of every configuration: ``check_backend``
(tests/api/test_builtin_conformance.py)."""

import itertools
import math

import numpy as np
import pytest

from rnnlab.cells import cell_spec
from rnnlab.experiment.schema import ModelConfig, TrainConfig
from rnnlab.nn.model import Model
from rnnlab.registry.manager import Registry
from rnnlab.testing import check_training_agreement, reference_backend, relative_error
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan, prepare
from tests.nn.test_lengths import experiment
from tests.support.epoch_checks import assert_same_state, twin_params

pytest.importorskip("numba")

from rnnlab_numba.tests.test_epoch import (  # noqa: E402
    OPTIMIZERS,
    assert_epoch_matches_the_reference,
    make_data,
    run_both,
)
from rnnlab_numba.tests.test_stateful import TRAINS, run_stateful, streams  # noqa: E402

MODERN = ("mingru", "minlstm", "indrnn", "lru")
CASES = [(cell, act) for cell in MODERN for act in cell_spec(cell).nonlinearities]


@pytest.fixture(scope="module")
def backend():
    return Registry().backend("numba").load()


def layer_problem(cell, dtype, *, T=7, N=6, I=3, H=5, seed=0):
    """Random weights (shaped by the cell's spec), inputs, a non-zero initial state and dL/dh
    for one layer."""
    rng = np.random.default_rng(seed)
    spec = cell_spec(cell)
    w = {k: rng.uniform(-0.5, 0.5, s).astype(dtype) for k, s in spec.layer_shapes(I, H).items()}
    x = rng.normal(size=(T, N, I)).astype(dtype)
    state0 = []
    for name in spec.state:
        s = rng.normal(size=(N, H))
        if name in spec.complex_state:
            s = s + 1j * rng.normal(size=(N, H))
        state0.append(s.astype(spec.state_dtype(name, dtype)))
    dhs = rng.normal(size=(T, N, H)).astype(dtype)
    return w, x, tuple(state0), dhs


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("cell,act", CASES)
@pytest.mark.parametrize("T,N,lengths", [(7, 6, None), (1, 5, None), (9, 5, [9, 3, 1, 9, 6])])
def test_layer_from_nonzero_state_matches_reference(backend, cell, act, dtype, rtol, T, N, lengths):
    ref = reference_backend()
    w, x, state0, dhs = layer_problem(cell, dtype, T=T, N=N)
    kw = {"nonlinearity": act}
    if lengths is not None:
        kw["lengths"] = np.array(lengths)
    got_hs, got_final, got_cache = backend.layer_forward(cell, w, x, state0, **kw)
    want_hs, want_final, want_cache = ref.layer_forward(cell, w, x, state0, **kw)
    got_grads, got_dx = backend.layer_backward(cell, w, got_cache, dhs)
    want_grads, want_dx = ref.layer_backward(cell, w, want_cache, dhs)
    finals = zip(got_final, want_final, strict=True)
    pairs = {
        "hs": (got_hs, want_hs),
        "dx": (got_dx, want_dx),
        **{f"final state {i}": ab for i, ab in enumerate(finals)},
        **{f"grad {k}": (got_grads[k], want_grads[k]) for k in want_grads},
    }
    assert list(got_grads) == list(want_grads)
    for what, (a, b) in pairs.items():
        assert a.shape == b.shape and a.dtype == b.dtype, what
        assert relative_error(a, b) <= rtol, f"{cell} {dtype} {what}: {relative_error(a, b):.2e}"


def test_erf_is_pythons_to_the_bit():
    """The lru's exact gelu: numba's math.erf gives the bytes of math.erf (the reference's)."""
    from numba import njit

    @njit
    def erf_all(a):
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = math.erf(a[i])
        return out

    rng = np.random.default_rng(0)
    a = np.concatenate([rng.normal(0, 3, 20000), np.linspace(-7, 7, 20001), [0.0, -0.0, 1e-300]])
    want = np.array([math.erf(v) for v in a])
    assert erf_all(a).tobytes() == want.tobytes()


# -- the fused epoch -------------------------------------------------------------------------------
def fused_cases():
    """Every cell and nonlinearity; layers, loss, target, lengths and the optimizer rotate."""
    combos = list(itertools.product([1, 2], ["mse", "xent"], ["last", "every"], [False, True]))
    out = []
    for i, (cell, act) in enumerate(CASES):
        for j in range(3):
            layers, loss, target, lengths = combos[(3 * i + 5 * j) % len(combos)]
            train = {**OPTIMIZERS[(i + j) % 3], "grad_clip": "norm", "grad_clip_value": 0.5}
            out.append((cell, act, layers, loss, target, lengths, train))
    return out


def plan_for(case, dtype="float64", **model):
    """The plan of ``case = (cell, act, layers, loss, target, lengths, train)``."""
    cell, act, layers, loss, target, lengths, train = case
    cfg = ModelConfig(
        cell=cell, layers=layers, hidden_size=5, dtype=dtype, nonlinearity=act, **model
    )
    tr = TrainConfig(batch_size=4, learning_rate=0.05, **train)
    return EpochPlan(cfg, tr, loss, target, lengths=lengths)


@pytest.mark.parametrize("case", fused_cases(), ids=lambda c: "-".join(map(str, c[:6])))
def test_fused_epoch_matches_the_reference(backend, case):
    _, _, _, loss, target, lengths, _ = case
    plan = plan_for(case)
    assert_epoch_matches_the_reference(backend, plan, loss, target, lengths)


@pytest.mark.exhaustive  # a signature of its own per cell: pytest -m exhaustive
@pytest.mark.parametrize("cell", MODERN)
def test_fused_epoch_matches_the_reference_float32(backend, cell):
    act = cell_spec(cell).default_nonlinearity
    plan = plan_for((cell, act, 2, "mse", "every", True, OPTIMIZERS[1]), "float32")
    rng, split, n_in, n_out = make_data("float32", "mse", "every", True)
    (got, params, opt), (want, ref_params, ref_opt) = run_both(
        backend, plan, split, rng, n_in, n_out
    )
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-4)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-4)


@pytest.mark.parametrize("cell", MODERN)
@pytest.mark.parametrize(
    "dropout,lengths",
    [pytest.param(0.0, True, marks=pytest.mark.exhaustive), (0.4, False), (0.4, True)],
)  # no dropout: a signature of its own per cell
def test_fused_bidirectional_and_dropout_match_the_reference(backend, cell, dropout, lengths):
    act = cell_spec(cell).default_nonlinearity
    train = dict(grad_clip="norm", grad_clip_value=1.0)
    case = (cell, act, 2, "mse", "last", lengths, train)
    plan = plan_for(case, bidirectional=True, dropout=dropout)
    rng, split, n_in, n_out = make_data("float64", "mse", "last", lengths)
    params, opt, ref_params, ref_opt = twin_params(plan, n_in, n_out, rng)
    runner = epoch_runner(backend, plan)
    assert runner is not None, plan.uncovered(backend.epoch_features)
    ref_model = Model(plan.model, reference_backend(), ref_params)
    mine, theirs = np.random.default_rng(4), np.random.default_rng(4)
    extra = {} if split.lengths is None else {"lengths": split.lengths}
    if dropout:
        extra["dropout_rng"] = mine
    for e in range(2):
        order = np.random.default_rng(e).permutation(len(split.x[0]))
        got = runner(params, opt, split.x, split.y, order, 0.05, **extra)
        want = reference_epoch(ref_model, ref_opt, plan, split, order, 0.05, dropout_rng=theirs)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-10)


@pytest.mark.parametrize("cell", MODERN)
@pytest.mark.parametrize("layers,B,dropout", [(1, 1, 0.0), (2, 3, 0.0), (2, 6, 0.4)])
def test_fused_stateful_epoch_matches_the_reference(backend, cell, layers, B, dropout):
    """15 steps in chunks of 4: each chunk starts from the state the previous one ended in
    (the lru's complex state, real and imaginary parts)."""
    cfg = ModelConfig(cell=cell, layers=layers, hidden_size=5, dropout=dropout)
    tr = TrainConfig(batch_size=4, learning_rate=0.05, **TRAINS[B % 3])
    plan = EpochPlan(cfg, tr, "mse", "every", chunk_length=4)
    rng, split, n_in, n_out = streams("float64", "mse", 15, B)
    (got, params, opt), (want, ref_params, ref_opt) = run_stateful(
        backend, plan, split, rng, n_in, n_out, 4, dropout_seed=7 if dropout else None
    )
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-12)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-11)


# -- whole runs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", MODERN)
@pytest.mark.parametrize(
    "sets,target",
    [
        ((), "every"),
        (("model.bidirectional=true", "model.dropout=0.3"), "last"),
    ],
    ids=["lengths", "lengths-bidirectional-dropout"],
)
def test_a_run_with_lengths_agrees_with_the_reference(backend, tmp_path, cell, sets, target):
    """Two layers, variable lengths: every per-epoch loss, final metric and parameter; the
    numba run trains through the fused epoch."""
    exp, registry = experiment(tmp_path, *sets, target=target, cell=cell)
    plan = prepare(exp, registry).plan
    assert not plan.uncovered(backend.epoch_features)
    diffs = check_training_agreement("numba", exp, registry=registry, rtol=1e-9)
    assert set(diffs) == {"losses", "metrics", "params"}
