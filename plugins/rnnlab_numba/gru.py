"""The numba backend's GRU layer, as torch.nn.GRU and plugins/rnnlab_numpy/gru.py (gate order
r, z, n in the rows of W_ih, W_hh, b_ih, b_hh):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shaped like lstm.py: the input projection of every step before the recurrence, the weight
gradients and dx summed step by step; arrays time-major ``[T, N, F]`` (see lstm.py for why).
Variable length as in rnn.py: step t runs on the rows ``[:active[t]]`` (rows sorted longest
first); entries past a row's end are never read, and are 0 in hs and dx.
"""

import numpy as np
from numba import njit

from .blocks import affine_rows, back_rows, outer_rows, sigmoid, sum_rows
from .mathfn import tanh
from .rnn import OPTS


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
def layer_forward(Wih, Whh, b_ih, b_hh, x, h0, active):
    """A layer over ``x [T, N, I]`` from ``h0 [N, H]``; returns ``hs [T, N, H]``, the activated
    gates ``[T, N, 3H]`` and ``hn [T, N, H]`` (the backward pass needs both)."""
    T, N, n_in = x.shape
    G, H = Whh.shape
    full = T == 0 or active[T - 1] == N
    gates = np.empty((T, N, G), dtype=x.dtype)
    hn = np.empty((T, N, H), dtype=x.dtype)
    hs = np.empty((T, N, H), dtype=x.dtype) if full else np.zeros((T, N, H), dtype=x.dtype)
    hw = np.empty((N, G), dtype=x.dtype)
    # xw = x W_ih^T + b_ih for every (live) step at once, into gates (activated in place below)
    if full:
        affine_rows(Wih, b_ih, x.reshape((T * N, n_in)), gates.reshape((T * N, G)))
    else:
        for t in range(T):
            affine_rows(Wih, b_ih, x[t, : active[t]], gates[t, : active[t]])
    for t in range(T):
        R = active[t]
        if R == 0:
            break
        h_prev = hs[t - 1] if t > 0 else h0
        affine_rows(Whh, b_hh, h_prev[:R], hw[:R])  # hw = h_{t-1} W_hh^T + b_hh
        for r in range(R):
            cell_forward(gates[t, r], hw[r], h_prev[r], hn[t, r], hs[t, r])
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
def layer_backward(Wih, Whh, x, hs, gates, hn, h0, dhs, active):
    """Gradients of a layer from ``dhs [T, N, H]`` (dL/dh from above):
    ``(gW_ih, gW_hh, gb_ih, gb_hh, dx [T, N, I])``, summed step by step (see lstm.py).
    """
    T, N, n_in = x.shape
    G, H = Whh.shape
    dxa = np.empty((N, G), dtype=x.dtype)  # dL/d(x W_ih^T + b_ih) of step t
    dha = np.empty((N, G), dtype=x.dtype)  # dL/d(h_{t-1} W_hh^T + b_hh) of step t
    dh_next = np.zeros((N, H), dtype=x.dtype)  # dL/dh_t through step t+1
    dh_direct = np.empty((N, H), dtype=x.dtype)
    gWih = np.zeros((G, n_in), dtype=x.dtype)
    gWhh = np.zeros((G, H), dtype=x.dtype)
    gb_ih = np.zeros(G, dtype=x.dtype)
    gb_hh = np.zeros(G, dtype=x.dtype)
    if T == 0 or active[T - 1] == N:
        dx = np.empty((T, N, n_in), dtype=x.dtype)
    else:
        dx = np.zeros((T, N, n_in), dtype=x.dtype)
    WihT, WhhT = np.ascontiguousarray(Wih.T), np.ascontiguousarray(Whh.T)
    for t in range(T - 1, -1, -1):
        R = active[t]  # rows r >= R: past their end (their dh_next is still 0)
        if R == 0:
            continue
        h_prev = hs[t - 1] if t > 0 else h0
        for r in range(R):
            cell_backward(
                gates[t, r],
                hn[t, r],
                h_prev[r],
                dhs[t, r],
                dh_next[r],
                dxa[r],
                dha[r],
                dh_direct[r],
            )
        back_rows(WhhT, dha[:R], dh_next[:R])  # dh_{t-1} (through step t) = dh_t z_t + dha_t W_hh
        for r in range(R):
            for k in range(H):
                dh_next[r, k] += dh_direct[r, k]
        outer_rows(gWhh, dha[:R], h_prev[:R])  # dW_hh += dha_t^T h_{t-1}
        outer_rows(gWih, dxa[:R], x[t, :R])  # dW_ih += dxa_t^T x_t
        sum_rows(gb_hh, dha[:R])  # db_hh += dha_t
        sum_rows(gb_ih, dxa[:R])  # db_ih += dxa_t
        back_rows(WihT, dxa[:R], dx[t, :R])  # dx_t = dxa_t W_ih
    return gWih, gWhh, gb_ih, gb_hh, dx


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def forward(w, x, state0, active):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs,)`` and the cache."""
    h0 = np.ascontiguousarray(state0[0])
    x = np.ascontiguousarray(x)
    hs, gates, hn = layer_forward(
        w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], x, h0, active
    )
    return hs, (hs,), (x, hs, gates, hn, h0, active)


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, gates, hn, h0, active = cache
    gWih, gWhh, gb_ih, gb_hh, dx = layer_backward(
        w["weight_ih"], w["weight_hh"], x, hs, gates, hn, h0, np.ascontiguousarray(dhs), active
    )
    return {"weight_ih": gWih, "weight_hh": gWhh, "bias_ih": gb_ih, "bias_hh": gb_hh}, dx
