"""The PyTorch twin of an rnnlab model, shared by the parity tests: torch.nn.RNN/LSTM/GRU +
Linear with rnnlab's parameters loaded (strict), and the comparison of their gradients.
Importing this module skips the importing test module when PyTorch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.experiment.schema import ModelConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab_numpy.backend import NumpyBackend

torch = pytest.importorskip("torch")


class TorchTwin(torch.nn.Module):
    """Attributes ``rnn`` and ``head``, time-major, named as rnnlab names its parameters; each
    parity test adds its own ``forward``."""

    def __init__(
        self, cell, nonlinearity, layers, out, inputs, hidden, bidirectional=False, dropout=0.0
    ):
        super().__init__()
        kwargs = {"bidirectional": bidirectional, "dropout": dropout}
        if cell == "rnn":
            self.rnn = torch.nn.RNN(inputs, hidden, layers, nonlinearity=nonlinearity, **kwargs)
        else:
            cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            self.rnn = cls(inputs, hidden, layers, **kwargs)
        # the head reads [forward ; reverse] when bidirectional
        self.head = torch.nn.Linear(2 * hidden if bidirectional else hidden, out)

    def load(self, params):
        """This twin in float64 with rnnlab's ``params`` (name -> array) loaded, strict."""
        self.double()
        self.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in params.items()}, strict=True
        )
        return self


def rnnlab_model(cell, nonlinearity, layers, out, *, inputs, hidden, rng):
    """An rnnlab model on the NumPy reference backend, its parameters (``model.params``, what a
    twin loads) drawn from ``rng``."""
    cfg = ModelConfig(cell=cell, hidden_size=hidden, layers=layers, nonlinearity=nonlinearity)
    return Model(cfg, NumpyBackend(), init_params(cfg, Shape(inputs, out), rng))


def relative_error(a, b):
    """The largest absolute difference over the largest magnitude of either."""
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300)


def assert_gradients_match(grads, twin, label, *, rtol=1e-10):
    """rnnlab's ``grads`` are the twin's ``.grad`` (after ``backward``): the same names, each
    within ``rtol`` relative error."""
    torch_grads = {name: p.grad.numpy() for name, p in twin.named_parameters()}
    assert set(torch_grads) == set(grads)
    for name, g in grads.items():
        err = relative_error(g, torch_grads[name])
        assert err <= rtol, f"{label} {name}: relative error {err:.2e}"
