"""Float64 central finite-difference checks of the NumPy backend's exact BPTT, every cell."""

import numpy as np
import pytest
from rnnlab_numpy.backend import NumpyBackend

from rnnlab.config import ModelConfig
from rnnlab.model import Model, Shape, init_params

T, N, D, H = 5, 3, 2, 4  # steps, batch, input size, hidden size
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = [("mse", "last", 2), ("xent", "every", 3)]  # loss, target, output size


def make_problem(cell, nonlinearity, layers, loss, target, out, seed=0):
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(cell=cell, hidden_size=H, layers=layers, nonlinearity=nonlinearity)
    params = init_params(cfg, Shape(D, out), rng)
    # larger weights than the init so every gate and both signs of a relu are exercised
    for value in params.values():
        value *= 2.0
    x = rng.normal(size=(T, N, D))
    if loss == "mse":
        y = rng.normal(size=(N, out))
    else:
        y = rng.integers(0, out, size=(T, N))
    return Model(cfg, NumpyBackend(), params), x, y


def numeric_grad(model, x, y, loss, target, name, eps=1e-6):
    p = model.params[name]
    g = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        keep = p[idx]
        p[idx] = keep + eps
        up = model.loss(x, y, loss, target)
        p[idx] = keep - eps
        down = model.loss(x, y, loss, target)
        p[idx] = keep
        g[idx] = (up - down) / (2 * eps)
    return g


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss,target,out", CASES)
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_gradients_match_finite_differences(cell, nonlinearity, layers, loss, target, out):
    model, x, y = make_problem(cell, nonlinearity, layers, loss, target, out)
    _, grads, _ = model.loss_and_grads(x, y, loss, target)
    assert set(grads) == set(model.params)
    for name in model.params:
        numeric = numeric_grad(model, x, y, loss, target, name)
        err = relative_error(grads[name], numeric)
        assert err <= 1e-7, f"{cell}/{nonlinearity} {name}: relative error {err:.2e}"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_final_state_is_the_last_hidden_state(cell):
    model, x, y = make_problem(cell, "tanh", 2, "mse", "last", 1)
    hs, final, _ = model._layers_forward(x, None)
    assert len(final) == 2
    np.testing.assert_array_equal(final[-1][0], hs[-1])
    assert len(final[0]) == (2 if cell == "lstm" else 1)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_follows_float64(cell):
    model, x, y = make_problem(cell, "tanh", 2, "mse", "last", 1)
    _, g64, _ = model.loss_and_grads(x, y, "mse", "last")
    params32 = {k: v.astype(np.float32) for k, v in model.params.items()}
    cfg32 = ModelConfig(cell=cell, hidden_size=H, layers=2, dtype="float32")
    _, g32, _ = Model(cfg32, NumpyBackend(), params32).loss_and_grads(
        x.astype(np.float32), y.astype(np.float32), "mse", "last")
    for name, g in g64.items():
        assert g32[name].dtype == np.float32
        assert relative_error(g32[name].astype(np.float64), g) < 1e-4, name
