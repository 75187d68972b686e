"""rnnlab parameters load into torch.nn.RNN/LSTM/GRU + Linear (strict) and give the same outputs
and gradients, in float64. Skipped when PyTorch is not installed."""

import numpy as np
import pytest

from rnnlab.experiment.schema import ModelConfig
from rnnlab.nn.model import Shape, init_params
from tests.support.torch_twin import TorchTwin, assert_gradients_match, rnnlab_model, torch

T, N, D, H = 6, 3, 2, 5  # steps, batch, input size, hidden size
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = [("mse", "last", 2), ("xent", "every", 3)]  # loss, target, output size


class TorchModel(TorchTwin):
    """The torch twin of an rnnlab model on whole sequences."""

    def __init__(self, cell, nonlinearity, layers, out):
        super().__init__(cell, nonlinearity, layers, out, inputs=D, hidden=H)

    def forward(self, x, target):
        hs, _ = self.rnn(x)
        return self.head(hs[-1] if target == "last" else hs)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss,target,out", CASES)
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_outputs_and_gradients_match_pytorch(cell, nonlinearity, layers, loss, target, out):
    rng = np.random.default_rng(1)
    model = rnnlab_model(cell, nonlinearity, layers, out, inputs=D, hidden=H, rng=rng)
    x = rng.normal(size=(T, N, D))
    y = rng.normal(size=(N, out)) if loss == "mse" else rng.integers(0, out, size=(T, N))

    twin = TorchModel(cell, nonlinearity, layers, out).load(model.params)
    x_t = torch.from_numpy(x)
    out_t = twin(x_t, target)
    if loss == "mse":
        loss_t = torch.nn.functional.mse_loss(out_t, torch.from_numpy(y))
    else:
        loss_t = torch.nn.functional.cross_entropy(
            out_t.reshape(-1, out), torch.from_numpy(y).reshape(-1)
        )
    loss_t.backward()

    np.testing.assert_allclose(model.predict(x, target), out_t.detach().numpy(), rtol=1e-10, atol=0)
    value, grads, _ = model.loss_and_grads(x, y, loss, target)
    assert value == pytest.approx(loss_t.item(), rel=1e-12)
    assert_gradients_match(grads, twin, f"{cell}/{nonlinearity}")


def test_forget_bias_sets_the_total_forget_gate_bias_in_pytorch():
    cfg = ModelConfig(cell="lstm", hidden_size=H, layers=2, forget_bias=1.0)
    params = init_params(cfg, Shape(D, 1), np.random.default_rng(0))
    twin = TorchModel("lstm", "tanh", 2, 1).load(params)
    for layer in range(2):
        total = getattr(twin.rnn, f"bias_ih_l{layer}") + getattr(twin.rnn, f"bias_hh_l{layer}")
        np.testing.assert_array_equal(total.detach().numpy()[H : 2 * H], np.ones(H))
