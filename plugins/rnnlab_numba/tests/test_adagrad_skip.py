"""Adagrad's skip of a one-hot first layer's untouched W_ih columns (step.clip_update_cols,
onehot.hot_columns, step.sums_settled): the same bytes as the full step (step.clip_update),
edge values included, and the checks that keep it exact."""

import numpy as np
import pytest

from rnnlab.experiment.config import TrainConfig
from rnnlab_numba.tests.test_onehot import settings

numba = pytest.importorskip("numba")

from rnnlab_numba import onehot, step  # noqa: E402
from rnnlab_numba.layout import Slots  # noqa: E402

J, K, HEAD, TAIL = 6, 11, 5, 7  # a [J, K] matrix between two other parameter blocks


def problem(rng, cols):
    """theta, sums and a gradient that is +0.0 in the matrix outside ``cols``, with -0.0
    parameters, zero and infinite sums among the skipped ones."""
    n = HEAD + J * K + TAIL
    theta, sa, g = rng.normal(size=n), rng.uniform(0, 2, size=n), rng.normal(size=n) * 3
    theta[::7] = -0.0
    sa[::5] = 0.0
    sa[3::11] = np.inf
    m = g[HEAD : HEAD + J * K].reshape(J, K)
    hot = np.zeros(K, bool)
    hot[cols] = True
    m[:, ~hot] = 0.0
    return theta, sa, g


@pytest.mark.parametrize("clip", ["none", "value", "norm"])
@pytest.mark.parametrize("lr", [0.1, 0.0, -0.1])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_skip_gives_the_full_steps_bytes(clip, lr, decay):
    tr = TrainConfig(optimizer="adagrad", grad_clip=clip, grad_clip_value=0.5,
                     weight_decay=decay, learning_rate=0.1)  # fmt: skip
    s = settings(tr)
    rng = np.random.default_rng(3)
    cols = np.array([4, 0, 9], np.int64)
    theta, sa, g = problem(rng, cols)
    want_theta, want_sa = theta.copy(), sa.copy()
    for k in range(3):
        gk = g * (k + 1)
        step.clip_update(s, want_theta, gk.copy(), Slots(want_sa, want_sa, 0, lr), k + 1)
        hot = (HEAD, J, K, cols, 3)
        step.clip_update_cols(s, theta, gk.copy(), Slots(sa, sa, 0, lr), k + 1, hot)
        assert want_theta.tobytes() == theta.tobytes()
        assert want_sa.tobytes() == sa.tobytes()


def test_zero_steps_exact_refuses_what_would_move_a_zero_gradients_parameter():
    inf = np.inf
    assert step.zero_steps_exact(0.1, 1e-8, -5.0, 5.0, 0.0)
    assert step.zero_steps_exact(0.1, 1e-8, -inf, inf, 0.0)
    assert not step.zero_steps_exact(0.1, 0.0, -5.0, 5.0, 0.0)  # sqrt(0) + 0 = 0: 0 / 0
    assert not step.zero_steps_exact(-0.1, 1e-8, -5.0, 5.0, 0.0)
    assert not step.zero_steps_exact(-0.0, 1e-8, -5.0, 5.0, 0.0)
    assert not step.zero_steps_exact(inf, 1e-8, -5.0, 5.0, 0.0)
    assert not step.zero_steps_exact(0.1, 1e-8, 5.0, -5.0, 0.0)  # clips +0.0 to -5
    assert not step.zero_steps_exact(0.1, 1e-8, -5.0, 5.0, 0.01)


def test_sums_settled_refuses_nan_negative_and_minus_zero_sums_and_nan_parameters():
    theta, sa = np.ones(6), np.array([0.0, 1.0, np.inf, 2.0, 3.0, 4.0])
    assert step.sums_settled(theta, sa, 0, 6)
    for bad in (np.nan, -1.0, -0.0):
        s2 = sa.copy()
        s2[4] = bad
        assert not step.sums_settled(theta, s2, 0, 6)
        assert step.sums_settled(theta, s2, 0, 4)  # outside the range: not looked at
    t2 = theta.copy()
    t2[1] = np.nan
    assert not step.sums_settled(t2, sa, 0, 6)


def test_hot_columns_are_the_batchs_characters_or_minus_one():
    x = np.zeros((5, 3, 4))  # steps, streams, characters
    idx = np.array([[1, 2, 1], [1, 3, 1], [0, 1, 1], [2, 2, 2], [1, 1, 1]])
    for t in range(5):
        x[t, np.arange(3), idx[t]] = 1.0
    cols, seen = np.empty(4, np.int64), np.empty(4, np.bool_)
    rows = np.array([0, 2], np.int64)
    n = onehot.hot_columns(x, rows, 1, 3, cols, seen)  # steps 1..3 of streams 0 and 2
    assert sorted(cols[:n]) == [0, 1, 2]
    x[2, 2, 3] = 0.5  # not one-hot
    assert onehot.hot_columns(x, rows, 1, 3, cols, seen) == -1
    assert onehot.hot_columns(x, rows, 3, 2, cols, seen) == 2  # the bad step not read
