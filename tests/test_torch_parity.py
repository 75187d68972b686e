"""rnnlab parameters load into torch.nn.RNN/LSTM/GRU + Linear (strict) and give the same outputs
and gradients, in float64. Skipped when PyTorch is not installed."""

import numpy as np
import pytest

from rnnlab.config import ModelConfig
from rnnlab.model import Model, Shape, init_params
from rnnlab_numpy.backend import NumpyBackend

torch = pytest.importorskip("torch")

T, N, D, H = 6, 3, 2, 5  # steps, batch, input size, hidden size
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = [("mse", "last", 2), ("xent", "every", 3)]  # loss, target, output size


class TorchModel(torch.nn.Module):
    """The torch twin of an rnnlab model: attributes ``rnn`` and ``head``, time-major."""

    def __init__(self, cell, nonlinearity, layers, out):
        super().__init__()
        if cell == "rnn":
            self.rnn = torch.nn.RNN(D, H, layers, nonlinearity=nonlinearity)
        else:
            self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](D, H, layers)
        self.head = torch.nn.Linear(H, out)

    def forward(self, x, target):
        hs, _ = self.rnn(x)
        return self.head(hs[-1] if target == "last" else hs)


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss,target,out", CASES)
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_outputs_and_gradients_match_pytorch(cell, nonlinearity, layers, loss, target, out):
    rng = np.random.default_rng(1)
    cfg = ModelConfig(cell=cell, hidden_size=H, layers=layers, nonlinearity=nonlinearity)
    params = init_params(cfg, Shape(D, out), rng)
    model = Model(cfg, NumpyBackend(), params)
    x = rng.normal(size=(T, N, D))
    y = rng.normal(size=(N, out)) if loss == "mse" else rng.integers(0, out, size=(T, N))

    twin = TorchModel(cell, nonlinearity, layers, out).double()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()}, strict=True)
    x_t = torch.from_numpy(x)
    out_t = twin(x_t, target)
    if loss == "mse":
        loss_t = torch.nn.functional.mse_loss(out_t, torch.from_numpy(y))
    else:
        loss_t = torch.nn.functional.cross_entropy(out_t.reshape(-1, out),
                                                   torch.from_numpy(y).reshape(-1))
    loss_t.backward()

    np.testing.assert_allclose(model.predict(x, target), out_t.detach().numpy(), rtol=1e-10,
                               atol=0)
    value, grads, _ = model.loss_and_grads(x, y, loss, target)
    assert value == pytest.approx(loss_t.item(), rel=1e-12)
    torch_grads = {name: p.grad.numpy() for name, p in twin.named_parameters()}
    assert set(torch_grads) == set(grads)
    for name, g in grads.items():
        err = relative_error(g, torch_grads[name])
        assert err <= 1e-10, f"{cell}/{nonlinearity} {name}: relative error {err:.2e}"


def test_forget_bias_sets_the_total_forget_gate_bias_in_pytorch():
    cfg = ModelConfig(cell="lstm", hidden_size=H, layers=2, forget_bias=1.0)
    params = init_params(cfg, Shape(D, 1), np.random.default_rng(0))
    twin = TorchModel("lstm", "tanh", 2, 1).double()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()}, strict=True)
    for layer in range(2):
        total = getattr(twin.rnn, f"bias_ih_l{layer}") + getattr(twin.rnn, f"bias_hh_l{layer}")
        np.testing.assert_array_equal(total.detach().numpy()[H:2 * H], np.ones(H))
