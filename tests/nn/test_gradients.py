"""The reference backend's BPTT against float64 central finite differences."""

import pytest

from rnnlab.experiment.schema import ModelConfig
from rnnlab.testing import check_agreement, gradient_errors, reference_backend


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize(
    "loss,target", [("mse", "last"), ("mse", "every"), ("xent", "last"), ("xent", "every")]
)
def test_rnn_gradients_match_finite_differences(layers, nonlinearity, loss, target):
    cfg = ModelConfig(cell="rnn", hidden_size=4, layers=layers, nonlinearity=nonlinearity)
    errors = gradient_errors(reference_backend(), cfg, loss, target)
    assert set(errors) >= {"rnn.weight_ih_l0", "rnn.bias_hh_l0", "head.weight", "head.bias"}
    assert len(errors) == 4 * layers + 2
    assert max(errors.values()) <= 1e-7, errors


def test_gradient_check_detects_a_wrong_gradient():
    """The check itself must be able to fail: corrupt one gradient and expect a large error."""
    backend = reference_backend()

    class Broken(type(backend)):
        def layer_backward(self, cell, weights, cache, dhs):
            grads, dx = super().layer_backward(cell, weights, cache, dhs)
            grads["bias_hh"] = grads["bias_hh"] * 1.01
            return grads, dx

    errors = gradient_errors(Broken(), ModelConfig(hidden_size=4), "mse", "last")
    assert errors["rnn.bias_hh_l0"] > 1e-3
    assert errors["rnn.weight_hh_l0"] <= 1e-7


def test_reference_agrees_with_itself_in_both_dtypes():
    backend = reference_backend()
    check_agreement(backend, backend)
