"""The numba backend's mingru, minlstm, indrnn and lru against the NumPy reference: one layer
from a non-zero state (complex for the lru), with and without lengths, in both precisions;
whole training runs (lengths, two layers, bidirectional, dropout, the adding experiments) to
1e-9. Gradients against finite differences and agreement of every configuration:
``check_backend`` (tests/api/test_builtin_conformance.py)."""

import math

import numpy as np
import pytest

from rnnlab.cells import cell_spec
from rnnlab.registry.manager import Registry
from rnnlab.testing import check_training_agreement, reference_backend, relative_error
from tests.nn.test_lengths import experiment
from tests.support.paths import EXPERIMENTS

pytest.importorskip("numba")

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


@pytest.mark.parametrize("cell", MODERN)
@pytest.mark.parametrize(
    "sets,target",
    [
        ((), "every"),
        (("model.bidirectional=true", "model.dropout=0.3"), "last"),
    ],
    ids=["lengths", "lengths-bidirectional-dropout"],
)
def test_a_run_with_lengths_agrees_with_the_reference(tmp_path, cell, sets, target):
    """Two layers, variable lengths: every per-epoch loss, final metric and parameter."""
    exp, registry = experiment(tmp_path, *sets, target=target, cell=cell)
    diffs = check_training_agreement("numba", exp, registry=registry, rtol=1e-9)
    assert set(diffs) == {"losses", "metrics", "params"}


@pytest.mark.parametrize("cell", MODERN)
def test_adding_training_agrees_with_reference(cell):
    sets = (
        "train.epochs=2",
        "task.length=20",
        "task.train_size=200",
        "task.val_size=40",
        "task.test_size=40",
        "model.hidden_size=8",
        "model.dtype=float64",
    )
    diffs = check_training_agreement(
        "numba", EXPERIMENTS / f"adding_{cell}.toml", sets=sets, rtol=1e-9
    )
    assert set(diffs) == {"losses", "metrics", "params"}
