"""The numba backend's ``state_gradients`` (dL/d(state)_t of every step, the diagnostics'
gradient flow) for mingru, minlstm, indrnn and lru against the NumPy reference's: one layer
with and without lengths, every nonlinearity; the diagnostics' per-direction gradients of one
and two layers, one and two directions; and a short numba run that records the figure."""

from dataclasses import replace

import numpy as np
import pytest

from rnnlab.experiment.schema import DiagnosticsConfig, ModelConfig
from rnnlab.nn.model import Model
from rnnlab.registry.manager import Registry
from rnnlab.testing import reference_backend, relative_error, sized_problem
from rnnlab.training.diagnostics import direction_gradients
from tests.support.paths import EXPERIMENTS
from tests.support.tiny_runs import SMALL_ADDING_SETS

pytest.importorskip("numba")

from rnnlab_numba.tests.test_modern_cells import CASES, MODERN, layer_problem  # noqa: E402

RTOL = 1e-9


@pytest.fixture(scope="module")
def backend():
    return Registry().backend("numba").load()


@pytest.mark.parametrize("lengths", [None, [9, 3, 1, 9, 6]], ids=["full", "lengths"])
@pytest.mark.parametrize("cell,act", CASES)
def test_one_layers_state_gradients_match_the_reference(backend, cell, act, lengths):
    ref = reference_backend()
    w, x, state0, dhs = layer_problem(cell, "float64", T=9, N=5)
    kw = {"nonlinearity": act}
    if lengths is not None:
        kw["lengths"] = np.array(lengths)
    _, _, got_cache = backend.layer_forward(cell, w, x, state0, **kw)
    _, _, want_cache = ref.layer_forward(cell, w, x, state0, **kw)
    got = backend.state_gradients(cell, w, got_cache, dhs)
    want = ref.state_gradients(cell, w, want_cache, dhs)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.iscomplexobj(got) == (cell == "lru")
    assert relative_error(got, want) <= RTOL, f"{cell} {act}: {relative_error(got, want):.2e}"
    if lengths is not None:  # nothing at a sequence's padded steps
        padded = np.arange(9)[:, None] >= np.array(lengths)[None, :]
        assert not np.any(got[padded])
        assert np.all(np.any(got[~padded] != 0, axis=-1))


def test_rnn_lstm_and_gru_give_none(backend):
    """Their gradient flow comes from ``layer_backward`` (the diagnostics know their
    equations), as the reference's kernels would give it."""
    w, x, state0, dhs = layer_problem("rnn", "float64")
    _, _, cache = backend.layer_forward("rnn", w, x, state0)
    assert backend.state_gradients("rnn", w, cache, dhs) is None


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", MODERN)
def test_diagnostics_gradients_match_the_reference(backend, cell, lengths, layers, bidirectional):
    """The top layer's gradient of every direction, as the diagnostics compute it on each
    backend (target "last": the reverse direction's gradient reaches every step directly)."""
    cfg = ModelConfig(cell=cell, hidden_size=5, layers=layers, bidirectional=bidirectional)
    params, x, y, lens = sized_problem(cfg, "mse", "last", lengths=lengths, T=8, N=5)
    got = direction_gradients(Model(cfg, backend, params), x, y, "mse", "last", lengths=lens)
    want = direction_gradients(
        Model(cfg, reference_backend(), params), x, y, "mse", "last", lengths=lens
    )
    assert len(got) == len(want) == (2 if bidirectional else 1)
    for d, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.any(a != 0)
        assert relative_error(a, b) <= RTOL, f"direction {d}: {relative_error(a, b):.2e}"


def test_a_numba_run_of_a_new_cell_records_the_gradient_flow():
    """The adding task on the lru (the fused epoch signature test_modern_cells' whole run
    compiles): every epoch's record holds the figure, not a note."""
    from rnnlab.experiment.config import load_experiment_file
    from rnnlab.training.compare import train_once, with_backend

    sets = SMALL_ADDING_SETS
    registry = Registry()
    exp = load_experiment_file(EXPERIMENTS / "adding_lru.toml", registry, sets)
    exp = replace(with_backend(exp, "numba"), diagnostics=DiagnosticsConfig(every=1, sample_size=8))
    result = train_once(exp, registry)
    assert len(result.history) == 2
    for record in result.history:
        assert "note" not in record
        norms = record["gradient_norm_by_step"]
        assert len(norms) == 20 and all(np.isfinite(norms)) and norms[-1] > 0
