"""The numba backend's lstm and gru layers against the NumPy reference.

Gradients against finite differences and agreement with the reference for every declared cell
run in test_numba_backend.py (``check_backend``); here: the cells are all declared, layers
started from a non-zero state (truncated BPTT over streams) with batch sizes that leave rows
over from the four-row blocks and a single step, and short adding-task training runs of every
built-in cell.
"""

import numpy as np
import pytest

from rnnlab.cells import BUILTIN_CELLS
from rnnlab.nn.model import GATES
from rnnlab.registry.manager import Registry
from rnnlab.testing import check_training_agreement, reference_backend, relative_error
from tests.support.paths import EXPERIMENTS
from tests.support.tiny_runs import SMALL_ADDING_SETS

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def backend():
    return Registry().backend("numba").load()


def test_every_builtin_cell_is_declared(backend):
    # the built-in cells: PyTorch's three and mingru, minlstm, indrnn, lru (test_modern_cells.py)
    assert set(BUILTIN_CELLS) <= set(backend.cells) <= set(reference_backend().cells)


def layer_problem(cell: str, dtype: str, *, T=7, N=6, I=3, H=5, seed=0):
    """Random weights, inputs, a non-zero initial state and dL/dh for one layer."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    shapes = {
        "weight_ih": (G * H, I),
        "weight_hh": (G * H, H),
        "bias_ih": (G * H,),
        "bias_hh": (G * H,),
    }
    w = {k: rng.uniform(-0.5, 0.5, s).astype(dtype) for k, s in shapes.items()}
    x = rng.normal(size=(T, N, I)).astype(dtype)
    state0 = tuple(rng.normal(size=(N, H)).astype(dtype) for _ in range(2 if cell == "lstm" else 1))
    dhs = rng.normal(size=(T, N, H)).astype(dtype)
    return w, x, state0, dhs


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("T,N", [(7, 6), (4, 1), (9, 4), (1, 5)])
def test_layer_from_nonzero_state_matches_reference(backend, cell, dtype, rtol, T, N):
    ref = reference_backend()
    w, x, state0, dhs = layer_problem(cell, dtype, T=T, N=N)
    got_hs, got_final, got_cache = backend.layer_forward(cell, w, x, state0)
    want_hs, want_final, want_cache = ref.layer_forward(cell, w, x, state0)
    got_grads, got_dx = backend.layer_backward(cell, w, got_cache, dhs)
    want_grads, want_dx = ref.layer_backward(cell, w, want_cache, dhs)
    finals = zip(got_final, want_final, strict=True)
    pairs = {
        "hs": (got_hs, want_hs),
        "dx": (got_dx, want_dx),
        **{f"final state {i}": ab for i, ab in enumerate(finals)},
        **{f"grad {k}": (got_grads[k], want_grads[k]) for k in want_grads},
    }
    assert set(got_grads) == set(want_grads)
    for what, (a, b) in pairs.items():
        assert a.shape == b.shape and a.dtype == b.dtype, what
        assert relative_error(a, b) <= rtol, f"{cell} {dtype} {what}: {relative_error(a, b):.2e}"


@pytest.mark.parametrize("cell", BUILTIN_CELLS)
def test_adding_training_agrees_with_reference(cell):
    sets = SMALL_ADDING_SETS
    diffs = check_training_agreement(
        "numba", EXPERIMENTS / f"adding_{cell}.toml", sets=sets, rtol=1e-9
    )
    assert set(diffs) == {"losses", "metrics", "params"}


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_chargen_stateful_training_agrees_with_reference(cell):
    """The text task on both backends: stateful streams carry the state through numba's layers
    exactly as through the reference's."""
    sets = ("train.epochs=3", f"model.cell={cell}", "model.hidden_size=16")
    diffs = check_training_agreement("numba", EXPERIMENTS / "chargen.toml", sets=sets, rtol=1e-9)
    assert set(diffs) == {"losses", "metrics", "params"}
