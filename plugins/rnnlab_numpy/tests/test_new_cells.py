"""mingru, minlstm, indrnn and lru on the reference backend: exact BPTT (float64 central
differences, lengths, bidirectional and dropout masks held), float32 following float64, and
predictions equal to a few lines of plain numpy of each cell's equations."""

import math

import numpy as np
import pytest

from rnnlab.experiment.schema import ModelConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.testing import gradient_errors, reference_backend, relative_error

CELLS = {"mingru": "identity", "minlstm": "identity", "indrnn": "relu", "lru": "gelu"}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "shape,loss,target,lengths",
    [
        (dict(layers=1), "mse", "last", False),
        (dict(layers=2, bidirectional=True, dropout=0.5), "xent", "every", True),
        (dict(layers=2, bidirectional=True, dropout=0.5), "mse", "last", True),
    ],
)
def test_gradients_match_finite_differences(cell, shape, loss, target, lengths):
    cfg = ModelConfig(cell=cell, hidden_size=4, nonlinearity=CELLS[cell], **shape)
    errors = gradient_errors(reference_backend(), cfg, loss, target, lengths=lengths)
    assert max(errors.values()) <= 1e-7, errors


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
def test_lru_readouts_have_exact_gradients(nonlinearity):
    cfg = ModelConfig(cell="lru", hidden_size=4, nonlinearity=nonlinearity)
    errors = gradient_errors(reference_backend(), cfg, "mse", "last", lengths=True)
    assert max(errors.values()) <= 1e-7, errors


@pytest.mark.parametrize("cell", CELLS)
def test_float32_follows_float64(cell):
    cfg = ModelConfig(cell=cell, hidden_size=4, layers=2, nonlinearity=CELLS[cell])
    rng = np.random.default_rng(0)
    params = init_params(cfg, Shape(3, 2), rng)
    x, y = rng.normal(size=(6, 5, 3)), rng.normal(size=(5, 2))
    _, g64, _ = Model(cfg, reference_backend(), params).loss_and_grads(x, y, "mse", "last")
    cfg32 = ModelConfig(
        cell=cell, hidden_size=4, layers=2, nonlinearity=CELLS[cell], dtype="float32"
    )
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    _, g32, _ = Model(cfg32, reference_backend(), p32).loss_and_grads(
        x.astype(np.float32), y.astype(np.float32), "mse", "last"
    )
    for name, g in g64.items():
        assert g32[name].dtype == np.float32
        assert relative_error(g32[name].astype(np.float64), g) < 1e-4, name


# -- the equations, independently -------------------------------------------------------------
def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def plain_layer(cell, p, k, xs):
    """One layer of ``cell`` over ``xs [T, N, I]`` from the saved parameters ``p``, step by
    step; returns the outputs ``[T, N, H]``."""
    g = {key[4 : -len(f"_l{k}")]: v for key, v in p.items() if key.endswith(f"_l{k}")}
    H = p["head.weight"].shape[1]
    h = np.zeros((xs.shape[1], H), complex if cell == "lru" else float)
    out = []
    for x in xs:
        if cell == "mingru":
            z = sig(x @ g["weight_ih"][:H].T + g["bias_ih"][:H])
            h = (1 - z) * h + z * (x @ g["weight_ih"][H:].T + g["bias_ih"][H:])
            out.append(h)
        elif cell == "minlstm":
            a = x @ g["weight_ih"].T + g["bias_ih"]
            f, i, c = sig(a[:, :H]), sig(a[:, H : 2 * H]), a[:, 2 * H :]
            h = f / (f + i) * h + i / (f + i) * c
            out.append(h)
        elif cell == "indrnn":
            h = np.maximum(x @ g["weight_ih"].T + g["bias_ih"] + g["weight_hh"] * h, 0)
            out.append(h)
        else:
            lam = np.exp(-np.exp(g["nu_log"]) + 1j * np.exp(g["theta_log"]))
            B, C = g["B_re"] + 1j * g["B_im"], g["C_re"] + 1j * g["C_im"]
            h = lam * h + np.exp(g["gamma_log"]) * (x @ B.T)
            a = (h @ C.T).real + x @ g["D"].T
            out.append(
                np.array([[a_ * 0.5 * (1 + math.erf(a_ / math.sqrt(2))) for a_ in r] for r in a])
            )
    return np.array(out)


@pytest.mark.parametrize("cell", CELLS)
def test_predict_equals_the_equations(cell):
    cfg = ModelConfig(cell=cell, hidden_size=5, layers=2, nonlinearity=CELLS[cell])
    rng = np.random.default_rng(1)
    params = init_params(cfg, Shape(3, 2), rng)
    x = rng.normal(size=(9, 4, 3))
    got = Model(cfg, reference_backend(), params).predict(x, "last")
    h = plain_layer(cell, params, 1, plain_layer(cell, params, 0, x))
    want = h[-1] @ params["head.weight"].T + params["head.bias"]
    assert np.max(np.abs(got - want)) <= 1e-10


def test_lru_init_follows_the_ring_and_normalises_the_input():
    cfg = ModelConfig(cell="lru", hidden_size=200, nonlinearity="gelu")
    cfg = type(cfg)(**{**cfg.__dict__, "r_min": 0.9, "r_max": 0.999, "max_phase": 0.314})
    p = init_params(cfg, Shape(3, 1), np.random.default_rng(0))
    modulus = np.exp(-np.exp(p["rnn.nu_log_l0"]))
    assert 0.9 <= modulus.min() and modulus.max() <= 0.999
    assert np.exp(p["rnn.theta_log_l0"]).max() <= 0.314
    np.testing.assert_allclose(np.exp(p["rnn.gamma_log_l0"]), np.sqrt(1 - modulus**2))


def test_chrono_init_sets_the_biases():
    base = ModelConfig(cell="lstm", hidden_size=6)
    cfg = type(base)(**{**base.__dict__, "chrono_tmax": 100.0})
    p = init_params(cfg, Shape(2, 1), np.random.default_rng(0))
    f, i = p["rnn.bias_ih_l0"][6:12], p["rnn.bias_ih_l0"][:6]
    assert np.all((0 <= f) & (f <= np.log(99))) and np.array_equal(i, -f)
    assert not p["rnn.bias_hh_l0"][:12].any()
    plain = init_params(base, Shape(2, 1), np.random.default_rng(0))
    assert np.array_equal(plain["rnn.weight_ih_l0"], p["rnn.weight_ih_l0"])  # same draws before
