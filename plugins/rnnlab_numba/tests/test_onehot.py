"""The numba backend's fast paths for a char model: one-hot inputs (onehot.py, taken by
blocks.affine_steps and blocks.add_outer_steps when the data is one-hot), the vectorised
softmax exponential (softmax.py) and clipping by value folded into the optimizer's pass
(step.clip_update), each against the dense or NumPy arithmetic it replaces, and fused epochs
on one-hot streams against the core's reference."""

import numpy as np
import pytest

from rnnlab.experiment.config import ModelConfig
from rnnlab.nn.optim import Optimizer, clip_gradients
from rnnlab.specs import Split
from rnnlab_numba.tests.test_stateful import TRAINS, plan_of, run_stateful
from tests.support.epoch_checks import assert_same_state

numba = pytest.importorskip("numba")

from rnnlab_numba import blocks, onehot, softmax, step  # noqa: E402
from rnnlab_numba.layout import Slots, model_settings, optimizer_settings  # noqa: E402


@pytest.fixture(scope="module")
def backend():
    from rnnlab.registry.manager import Registry

    return Registry().backend("numba").load()


def one_hot(T, R, V, rng):
    x = np.zeros((T, R, V))
    idx = rng.integers(0, V, size=(T, R))
    x[np.arange(T)[:, None], np.arange(R)[None, :], idx] = 1.0
    return x, idx


def test_onehot_rows_accepts_one_hot_rows_and_nothing_else():
    rng = np.random.default_rng(0)
    x, idx = one_hot(4, 3, 6, rng)
    active = np.array([3, 3, 2, 1])
    index = np.full((4, 3), -1)
    assert onehot.onehot_rows(x, active, index)
    live = np.arange(3)[None, :] < active[:, None]
    assert (index[live] == idx[live]).all()
    x[3, 2] = 0.7  # a padded row is never read
    assert onehot.onehot_rows(x, active, index)
    for bad in (0.5, 2.0, -1.0, np.nan, np.inf):
        y = x.copy()
        y[2, 1, (idx[2, 1] + 1) % 6] = bad  # a second non-zero entry
        assert not onehot.onehot_rows(y, active, index), bad
    y = x.copy()
    y[1, 0] = 0.0  # no 1 at all
    assert not onehot.onehot_rows(y, active, index)
    y = x.copy()
    y[0, 0, idx[0, 0]] = np.nan  # NaN in place of the 1
    assert not onehot.onehot_rows(y, active, index)
    assert not onehot.onehot_rows(np.ones((2, 2, 1)), np.array([2, 2]), index)  # one input


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_hot_products_are_the_dense_ones(dtype):
    """x W^T + b by the gather is the dense product to the bit; dW += D^T x by the scatter
    agrees with it to rounding, live rows only."""
    rng = np.random.default_rng(1)
    T, R, V, J = 5, 3, 7, 6
    x, _ = one_hot(T, R, V, rng)
    x = x.astype(dtype)
    active = np.array([3, 3, 2, 2, 1])
    W, b = rng.normal(size=(J, V)).astype(dtype), rng.normal(size=J).astype(dtype)
    out = np.full((T, R, J), 7.0, dtype)
    blocks.affine_steps(W, b, x, out, active)
    live = np.arange(R)[None, :] < active[:, None]
    np.testing.assert_array_equal(out[live], (x @ W.T + b)[live])
    assert (out[~live] == 7).all()  # untouched
    D = rng.normal(size=(T, R, J)).astype(dtype)
    G0 = rng.normal(size=(J, V)).astype(dtype)
    G = G0.copy()
    blocks.add_outer_steps(G, D, x, active)
    want = G0 + np.einsum("trj,trk->jk", D * live[..., None], x)
    np.testing.assert_allclose(G, want, rtol=1e-12 if dtype == "float64" else 1e-5)


def test_inputs_that_are_not_one_hot_take_the_dense_products():
    rng = np.random.default_rng(2)
    x, _ = one_hot(4, 2, 5, rng)
    x[2, 1, 0] += 0.25  # one row is not one-hot
    active = np.array([2, 2, 2, 2])
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    out = np.zeros((4, 2, 3))
    blocks.affine_steps(W, b, x, out, active)
    np.testing.assert_allclose(out, x @ W.T + b, rtol=1e-14)
    G = np.zeros((3, 5))
    D = rng.normal(size=(4, 2, 3))
    blocks.add_outer_steps(G, D, x, active)
    np.testing.assert_allclose(G, np.einsum("trj,trk->jk", D, x), rtol=1e-13)


@numba.njit
def exps(t):
    out = np.empty_like(t)
    for i in range(t.size):
        out[i] = softmax.exp_nonpositive(t[i])
    return out


def test_vectorised_exp_float64():
    t = -np.geomspace(1e-12, 707.9, 4001)
    t = np.concatenate([[0.0, -0.0, -5e-324], t, -np.random.default_rng(3).random(1000) * 50])
    got, want = exps(t), np.exp(t)
    assert got.dtype == np.float64
    ulp = np.abs(got - want) / np.spacing(want)
    assert ulp.max() <= 2
    low = exps(np.array([-708.5, -745.2, -1e300, -np.inf, np.nan]))
    np.testing.assert_array_equal(low[:4], 0.0)  # below the normal range (a subnormal or 0)
    assert np.isnan(low[4])


def test_vectorised_exp_float32():
    t = np.concatenate([[0.0], -np.geomspace(1e-7, 86.9, 4001)]).astype(np.float32)
    got = exps(t)
    assert got.dtype == np.float32
    want = np.exp(t.astype(np.float64))  # the exact value, rounded once below
    ulp = np.abs(got - want) / np.spacing(want.astype(np.float32))
    assert ulp.max() <= 2
    low = exps(np.array([-88.0, -200.0, np.nan], np.float32))
    np.testing.assert_array_equal(low[:2], 0.0)
    assert np.isnan(low[2])


def test_xent_row_is_softmax_cross_entropy():
    rng = np.random.default_rng(4)
    out = rng.normal(size=97) * 4
    z = out - out.max()
    p = np.exp(z) / np.exp(z).sum()
    grad = out.copy()
    loss = softmax.xent_row(grad, 11, 0.25)
    np.testing.assert_allclose(loss, -np.log(p[11]), rtol=1e-14)
    np.testing.assert_allclose(grad, (p - np.eye(97)[11]) * 0.25, rtol=1e-13, atol=1e-18)


@pytest.mark.parametrize("n", [0, 5, 8, 97, 203])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_softmax_sum_has_one_order(n, dtype):
    """fixed_sum adds in the order its docstring gives, to the bit: left to the compiler
    (reassoc), the order differed between a fresh compile and the cache."""
    a = (np.random.default_rng(n).normal(size=n) * 10.0 ** (np.arange(n) % 7)).astype(dtype)
    lanes = [0.0] * 8
    for i in range(n - n % 8):
        lanes[i % 8] += float(a[i])
    want = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + (
        (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
    )
    for i in range(n - n % 8, n):
        want += float(a[i])
    assert softmax.fixed_sum(a) == want


def settings(train):
    return model_settings(
        ModelConfig(hidden_size=1), n_out=1, batch=1, chunk_rows=1, **optimizer_settings(train)
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad"])
@pytest.mark.parametrize("clip", ["none", "norm", "value"])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_clip_update_is_rnnlab_optim_to_the_bit(optimizer, clip, decay):
    """Three steps of clipping then the optimizer on a vector with gradients beyond the clip
    value, -0.0 and zeros: the same bytes as NumPy's (rnnlab.nn.optim)."""
    from rnnlab.experiment.config import TrainConfig

    tr = TrainConfig(optimizer=optimizer, grad_clip=clip, grad_clip_value=0.3,
                     momentum=0.9 if optimizer == "sgd" else 0.0, weight_decay=decay,
                     learning_rate=0.1)  # fmt: skip
    rng = np.random.default_rng(5)
    theta0 = rng.normal(size=50)
    params = {"w": theta0.copy()}
    ref = Optimizer(tr, params)
    theta = theta0.copy()
    sa, sb = np.zeros(50), np.zeros(50)
    s = settings(tr)
    for k in range(3):
        g = rng.normal(size=50) * 0.5
        g[:3] = [0.0, -0.0, 4.0]
        want = {"w": g.copy()}
        clip_gradients(want, clip, 0.3)
        ref.step(params, want, 0.1)
        step.clip_update(s, theta, g, Slots(sa, sb, 0, 0.1), k + 1)
        if clip == "norm":  # the norm's sum runs in another order than np.vdot's
            np.testing.assert_allclose(theta, params["w"], rtol=1e-14)
        else:
            np.testing.assert_array_equal(theta, params["w"])


CELLS = ["rnn", "lstm", "gru"]


@pytest.mark.parametrize("cell", CELLS)
def test_stateful_epoch_on_one_hot_streams_matches_the_reference(backend, cell):
    """A char model's epoch (one-hot inputs, xent at every step, min-char-rnn's optimizer and
    clipping) through the fused runner, which takes the gather and scatter, against the core's
    chunk loop."""
    plan = plan_of(cell, 2 if cell == "lstm" else 1, "xent", TRAINS[0])
    rng = np.random.default_rng(6)
    S, B, V = 15, 2, 6
    x, idx = one_hot(S, B, V, rng)
    y = np.roll(idx, -1, axis=0)
    (got, params, opt), (want, ref_params, ref_opt) = run_stateful(
        backend, plan, Split(x, y), rng, V, V, 4
    )
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-12)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-11)
