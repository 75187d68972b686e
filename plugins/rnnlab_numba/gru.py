"""GRU layer over row-major blocks, as torch.nn.GRU and plugins/rnnlab_numpy/gru.py (gate order
r, z, n in the rows of W_ih, W_hh, b_ih, b_hh):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shaped like lstm.py: the input projection of every step before the recurrence, the weight
gradients and dx after it. Arrays are row-major ``[N, T, F]`` (see rnn.py).
"""

import numpy as np
from numba import njit

from .blocks import (
    affine_prev,
    affine_rows,
    back_rows,
    back_step,
    outer_prev,
    outer_rows,
    sigmoid,
    sum_rows,
    to_rows,
)
from .mathfn import tanh
from .rnn import OPTS, prev


@njit(**OPTS)
def cell_forward(a, hw, h_prev, hn, h):
    """One row of one step: ``a`` holds x W_ih^T + b_ih [3H] and gets the activated gates
    r, z, n; ``hw`` = h_{t-1} W_hh^T + b_hh; writes ``hn`` = W_hn h_{t-1} + b_hn (the backward
    pass needs it) and the hidden state ``h``. (Separate loops, no two arguments sharing memory:
    so that each loop vectorises.)"""
    H = h.size
    for j in range(2 * H):  # r, z
        a[j] = sigmoid(a[j] + hw[j])
    for j in range(H):
        hn[j] = hw[2 * H + j]
    for j in range(H):  # n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        a[2 * H + j] = tanh(a[2 * H + j] + a[j] * hn[j])
    for j in range(H):  # h = (1 - z) n + z h_prev
        h[j] = (1.0 - a[H + j]) * a[2 * H + j] + a[H + j] * h_prev[j]


@njit(**OPTS)
def layer_forward(Wih, Whh, b_ih, b_hh, x, h0):
    """A layer over row-major ``x [N, T, I]`` from ``h0 [N, H]``; returns ``hs [N, T, H]``, the
    activated gates ``[N, T, 3H]`` and ``hn [N, T, H]`` (the backward pass needs both)."""
    N, T, n_in = x.shape
    G, H = Whh.shape
    gates = np.empty((N, T, G), dtype=x.dtype)
    hn = np.empty((N, T, H), dtype=x.dtype)
    hs = np.empty((N, T, H), dtype=x.dtype)
    hw = np.empty((N, G), dtype=x.dtype)
    # xw = x W_ih^T + b_ih for every step at once, into gates (activated in place below)
    affine_rows(Wih, b_ih, x.reshape((N * T, n_in)), gates.reshape((N * T, G)))
    for t in range(T):
        affine_prev(Whh, b_hh, hs, h0, t, hw)  # hw = h_{t-1} W_hh^T + b_hh
        for r in range(N):
            cell_forward(gates[r, t], hw[r], prev(hs, h0, r, t), hn[r, t], hs[r, t])
    return hs, gates, hn


@njit(**OPTS)
def cell_backward(gate, hn, h_prev, dh_above, dh_next, dxa, dha, dh_direct):
    """One row of one step: dL/d(input-side pre-activations) ``dxa`` and dL/d(hidden-side
    pre-activations) ``dha`` [3H], and ``dh_direct`` = dL/dh_{t-1} through ``z h_prev``.
    ``dh_next`` holds dL/dh_t through step t+1 (added to ``dh_above``)."""
    H = hn.size
    for j in range(H):
        r, z, n = gate[j], gate[H + j], gate[2 * H + j]
        dh = dh_above[j] + dh_next[j]
        # h = (1 - z) n + z h_prev
        dn = dh * (1.0 - z)
        dz = dh * (h_prev[j] - n)
        # n = tanh(a_n),  a_n = xw_n + r * hn;  then sigmoid' = s (1 - s)
        dan = dn * (1.0 - n * n)
        dar = dan * hn[j] * r * (1.0 - r)
        daz = dz * z * (1.0 - z)
        dxa[j], dxa[H + j], dxa[2 * H + j] = dar, daz, dan
        dha[j], dha[H + j], dha[2 * H + j] = dar, daz, dan * r
        dh_direct[j] = dh * z


@njit(**OPTS)
def layer_backward(Wih, Whh, x, hs, gates, hn, h0, dhs):
    """Gradients of a layer from row-major ``dhs [N, T, H]`` (dL/dh from above):
    ``(gW_ih, gW_hh, gb_ih, gb_hh, dx [N, T, I])``.

    dh_{t-1} (through step t) = dh_t z_t + dha_t W_hh;  dW_ih = sum dxa_t^T x_t;
    dW_hh = sum dha_t^T h_{t-1};  db_ih = sum dxa_t;  db_hh = sum dha_t;  dx_t = dxa_t W_ih
    """
    N, T, n_in = x.shape
    G, H = Whh.shape
    dxa = np.empty((N, T, G), dtype=x.dtype)
    dha = np.empty((N, T, G), dtype=x.dtype)
    dh_next = np.zeros((N, H), dtype=x.dtype)
    dh_direct = np.empty((N, H), dtype=x.dtype)
    WhhT = np.ascontiguousarray(Whh.T)
    for t in range(T - 1, -1, -1):
        for r in range(N):
            cell_backward(gates[r, t], hn[r, t], prev(hs, h0, r, t), dhs[r, t], dh_next[r],
                          dxa[r, t], dha[r, t], dh_direct[r])
        back_step(WhhT, dha, t, dh_next)
        for r in range(N):
            for k in range(H):
                dh_next[r, k] += dh_direct[r, k]
    # weight gradients and dx over every step at once
    dxa2, dha2 = dxa.reshape((N * T, G)), dha.reshape((N * T, G))
    gWih = np.zeros((G, n_in), dtype=x.dtype)
    gWhh = np.zeros((G, H), dtype=x.dtype)
    gb_ih = np.zeros(G, dtype=x.dtype)
    gb_hh = np.zeros(G, dtype=x.dtype)
    outer_rows(gWih, dxa2, x.reshape((N * T, n_in)))
    outer_prev(gWhh, dha, hs, h0)
    sum_rows(gb_ih, dxa2)
    sum_rows(gb_hh, dha2)
    dx = np.empty((N, T, n_in), dtype=x.dtype)
    back_rows(np.ascontiguousarray(Wih.T), dxa2, dx.reshape((N * T, n_in)))
    return gWih, gWhh, gb_ih, gb_hh, dx


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def forward(w, x, state0):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``."""
    h0 = np.ascontiguousarray(state0[0])
    xr = to_rows(x)
    hs, gates, hn = layer_forward(w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], xr,
                                  h0)
    return np.swapaxes(hs, 0, 1), (hs[:, -1].copy(),), (xr, hs, gates, hn, h0)


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    xr, hs, gates, hn, h0 = cache
    gWih, gWhh, gb_ih, gb_hh, dx = layer_backward(w["weight_ih"], w["weight_hh"], xr, hs, gates,
                                                  hn, h0, to_rows(dhs))
    grads = {"weight_ih": gWih, "weight_hh": gWhh, "bias_ih": gb_ih, "bias_hh": gb_hh}
    return grads, np.swapaxes(dx, 0, 1)
