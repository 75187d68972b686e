"""The NumPy backend's lstm and gru cells: exact BPTT (float64 central finite differences) and
float32 following float64. The rnn cell's checks are in test_gradients.py."""

import numpy as np
import pytest

from rnnlab.experiment.schema import ModelConfig
from rnnlab.nn.model import Model
from rnnlab.testing import gradient_errors, problem, reference_backend, relative_error

CELLS = ["lstm", "gru"]


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss,target", [("mse", "last"), ("xent", "every")])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_finite_differences(cell, layers, loss, target):
    cfg = ModelConfig(cell=cell, hidden_size=4, layers=layers)
    # eps = 1e-5 rather than 1e-6: at PyTorch's init the gated cells' weight_hh gradients are
    # ~1e-3 of an O(1) loss, so the round-off of a 1e-6 difference (~1e-16 / 1e-6) alone comes to
    # ~1e-7 relative; at 1e-5 both round-off and the O(eps^2) truncation stay near 1e-8.
    errors = gradient_errors(reference_backend(), cfg, loss, target, eps=1e-5)
    assert len(errors) == 4 * layers + 2  # every layer's four arrays and the head's two
    assert max(errors.values()) <= 1e-7, errors


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_check_detects_a_swapped_gate(cell):
    """Feeding the forget (lstm) or update (gru) gate's gradient into the wrong rows must fail."""
    backend = reference_backend()

    class Broken(type(backend)):
        def layer_backward(self, cell, weights, cache, dhs):
            grads, dx = super().layer_backward(cell, weights, cache, dhs)
            H = weights["weight_hh"].shape[1]
            grads["bias_ih"] = grads["bias_ih"].copy()
            grads["bias_ih"][:H] = grads["bias_ih"][H : 2 * H]
            return grads, dx

    errors = gradient_errors(Broken(), ModelConfig(cell=cell, hidden_size=4), "mse", "last")
    assert errors["rnn.bias_ih_l0"] > 1e-3
    assert errors["rnn.weight_ih_l0"] <= 1e-7


@pytest.mark.parametrize("cell", CELLS)
def test_final_state_is_the_last_step(cell):
    cfg = ModelConfig(cell=cell, hidden_size=4, layers=2)
    params, x, _ = problem(cfg, "mse", "last")
    hs, final, _ = Model(cfg, reference_backend(), params)._layers_forward(x, None)
    assert [len(s) for s in final] == [2 if cell == "lstm" else 1] * 2
    np.testing.assert_array_equal(final[-1][0], hs[-1])


@pytest.mark.parametrize("cell", CELLS)
def test_float32_follows_float64(cell):
    cfg = ModelConfig(cell=cell, hidden_size=4, layers=2)
    params, x, y = problem(cfg, "mse", "last")
    _, g64, _ = Model(cfg, reference_backend(), params).loss_and_grads(x, y, "mse", "last")
    cfg32 = ModelConfig(cell=cell, hidden_size=4, layers=2, dtype="float32")
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    _, g32, _ = Model(cfg32, reference_backend(), params32).loss_and_grads(
        x.astype(np.float32), y.astype(np.float32), "mse", "last"
    )
    for name, g in g64.items():
        assert g32[name].dtype == np.float32
        assert relative_error(g32[name].astype(np.float64), g) < 1e-5, name
