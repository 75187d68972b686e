"""The numba backend's LSTM layer, as torch.nn.LSTM and plugins/rnnlab_numpy/lstm.py (gate
order i, f, g, o in the rows of W_ih, W_hh, b_ih, b_hh):

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh   (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The input projection of every step is one pass before the recurrence, as in the reference; the
backward pass sums the weight gradients and dx step by step (the same products, four rows at a
time, without a [T, N, 4H] buffer).

Arrays are time-major ``[T, N, F]``, as the layer contract passes them (no copies), unlike
rnn.py's row-major blocks: each step then works on one contiguous ``[N, F]`` block. With rows
``T*F`` apart the per-step gate loops ran about 4x slower here at T=100 (cache conflicts).

Variable length as in rnn.py: step t runs on the rows ``[:active[t]]`` (rows sorted longest
first); entries past a row's end are never read, and are 0 in hs, cs and dx.
"""

import numpy as np
from numba import njit

from .blocks import affine_rows, back_rows, outer_rows, sigmoid, sum_rows
from .mathfn import tanh
from .rnn import OPTS


@njit(**OPTS)
def cell_forward(a, hw, c_prev, c, h):
    """One row of one step: ``a`` holds x W_ih^T + b_ih [4H] and gets the activated gates
    i, f, g, o; ``hw`` = h_{t-1} W_hh^T + b_hh; writes the cell state ``c`` and hidden state ``h``.
    (Separate loops, no two arguments sharing memory: so that each loop vectorises.)"""
    H = c.size
    for j in range(2 * H):  # i, f
        a[j] = sigmoid(a[j] + hw[j])
    for j in range(2 * H, 3 * H):  # g
        a[j] = tanh(a[j] + hw[j])
    for j in range(3 * H, 4 * H):  # o
        a[j] = sigmoid(a[j] + hw[j])
    for j in range(H):
        c[j] = a[H + j] * c_prev[j] + a[j] * a[2 * H + j]  # c = f * c_prev + i * g
        h[j] = a[3 * H + j] * tanh(c[j])  # h = o * tanh(c)


@njit(**OPTS)
def layer_forward(Wih, Whh, b_ih, b_hh, x, h0, c0, active):
    """A layer over ``x [T, N, I]`` from ``(h0, c0) [N, H]``; returns ``hs``, ``cs``
    ``[T, N, H]`` and the activated gates ``[T, N, 4H]`` (the backward pass needs them)."""
    T, N, n_in = x.shape
    G, H = Whh.shape
    full = T == 0 or active[T - 1] == N
    gates = np.empty((T, N, G), dtype=x.dtype)
    hs = np.empty((T, N, H), dtype=x.dtype) if full else np.zeros((T, N, H), dtype=x.dtype)
    cs = np.empty((T, N, H), dtype=x.dtype) if full else np.zeros((T, N, H), dtype=x.dtype)
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
        c_prev = cs[t - 1] if t > 0 else c0
        affine_rows(Whh, b_hh, h_prev[:R], hw[:R])  # hw = h_{t-1} W_hh^T + b_hh
        for r in range(R):
            cell_forward(gates[t, r], hw[r], c_prev[r], cs[t, r], hs[t, r])
    return hs, cs, gates


@njit(**OPTS)
def cell_backward(gate, c, c_prev, dh_above, dh_next, dc_next, da):
    """One row of one step: ``da`` = dL/d(pre-activations) [4H]; ``dc_next`` becomes dL/dc_{t-1}
    through c_t. ``dh_next`` holds dL/dh_t through step t+1 (added to ``dh_above``)."""
    H = c.size
    for j in range(H):
        i, f, g, o = gate[j], gate[H + j], gate[2 * H + j], gate[3 * H + j]
        tanh_c = tanh(c[j])
        dh = dh_above[j] + dh_next[j]
        # h = o * tanh(c):  do = dh * tanh(c);  dc = dh * o * (1 - tanh(c)^2) + dc_next
        do = dh * tanh_c
        dc = dh * o * (1.0 - tanh_c * tanh_c) + dc_next[j]
        # c = f * c_prev + i * g, then through sigmoid' = s (1 - s) and tanh' = 1 - g^2
        da[j] = dc * g * i * (1.0 - i)
        da[H + j] = dc * c_prev[j] * f * (1.0 - f)
        da[2 * H + j] = dc * i * (1.0 - g * g)
        da[3 * H + j] = do * o * (1.0 - o)
        dc_next[j] = dc * f


@njit(**OPTS)
def layer_backward(Wih, Whh, x, hs, cs, gates, h0, c0, dhs, active):
    """Gradients of a layer from ``dhs [T, N, H]`` (dL/dh from above):
    ``(gW_ih, gW_hh, gb, dx [T, N, I])``, gb being the gradient of b_ih and of b_hh alike.
    The weight gradients are summed step by step, so ``da`` is one step's ``[N, 4H]`` (a
    ``[T, N, 4H]`` buffer cost more in fresh pages than the products it batched).
    """
    T, N, n_in = x.shape
    G, H = Whh.shape
    da = np.empty((N, G), dtype=x.dtype)  # dL/d(pre-activations) of step t
    dh_next = np.zeros((N, H), dtype=x.dtype)  # dL/dh_t through step t+1
    dc_next = np.zeros((N, H), dtype=x.dtype)  # dL/dc_t through step t+1
    gWih = np.zeros((G, n_in), dtype=x.dtype)
    gWhh = np.zeros((G, H), dtype=x.dtype)
    gb = np.zeros(G, dtype=x.dtype)
    if T == 0 or active[T - 1] == N:
        dx = np.empty((T, N, n_in), dtype=x.dtype)
    else:
        dx = np.zeros((T, N, n_in), dtype=x.dtype)
    WihT, WhhT = np.ascontiguousarray(Wih.T), np.ascontiguousarray(Whh.T)
    for t in range(T - 1, -1, -1):
        R = active[t]  # rows r >= R: past their end (their dh_next, dc_next are still 0)
        if R == 0:
            continue
        h_prev = hs[t - 1] if t > 0 else h0
        c_prev = cs[t - 1] if t > 0 else c0
        for r in range(R):
            cell_backward(
                gates[t, r], cs[t, r], c_prev[r], dhs[t, r], dh_next[r], dc_next[r], da[r]
            )
        back_rows(WhhT, da[:R], dh_next[:R])  # dh_{t-1} (through step t) = da_t W_hh
        outer_rows(gWhh, da[:R], h_prev[:R])  # dW_hh += da_t^T h_{t-1}
        outer_rows(gWih, da[:R], x[t, :R])  # dW_ih += da_t^T x_t
        sum_rows(gb, da[:R])  # db += da_t
        back_rows(WihT, da[:R], dx[t, :R])  # dx_t = da_t W_ih
    return gWih, gWhh, gb, dx


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def forward(w, x, state0, active):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0, c0)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs, cs)`` and the cache."""
    h0, c0 = (np.ascontiguousarray(s) for s in state0)
    x = np.ascontiguousarray(x)
    hs, cs, gates = layer_forward(
        w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], x, h0, c0, active
    )
    return hs, (hs, cs), (x, hs, cs, gates, h0, c0, active)


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, cs, gates, h0, c0, active = cache
    gWih, gWhh, gb, dx = layer_backward(
        w["weight_ih"], w["weight_hh"], x, hs, cs, gates, h0, c0, np.ascontiguousarray(dhs), active
    )
    return {"weight_ih": gWih, "weight_hh": gWhh, "bias_ih": gb, "bias_hh": gb.copy()}, dx
