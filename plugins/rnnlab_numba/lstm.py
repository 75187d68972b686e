"""The numba backend's LSTM layer, as torch.nn.LSTM and plugins/rnnlab_numpy/lstm.py (gate
order i, f, g, o in the rows of W_ih, W_hh, b_ih, b_hh):

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh   (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The input projection of every step is one pass before the recurrence, as in the reference; the
backward pass keeps only da_t W_hh in the recurrence and stores each step's da in place of its
gates, so that the weight gradients, bias sums and dx run after it over every step's rows at
once (blocks.py's ``*_steps``: one sweep over a weight per eight rows instead of per step). The
products run in the outer-product form (blocks.py): the forward pass takes W_hh^T (the fused
epoch transposes it once per batch), the backward pass the weights as they are.

Arrays are time-major ``[T, R, F]``: each step then works on one contiguous ``[R, F]`` block.
With rows ``T*F`` apart (row-major) the per-step gate loops ran about 4x slower here at T=100
(cache conflicts). The kernels write into buffers the caller owns (the fused epoch allocates
them once per runner); the layer contract at the bottom allocates them per call.

Variable length and ``h0_zero`` as in rnn.py: step t runs on the rows ``[:active[t]]`` (rows
sorted longest first); entries past a row's end are never read, and are 0 in hs, cs and dx.
"""

import numpy as np

from .blocks import (
    OPTS,
    add_outer,
    add_outer_steps,
    add_product_steps,
    add_rows_steps,
    affine_steps,
    affine_t,
    fill_rows,
    product_t,
    transposed,
)
from .jitcache import njit
from .mathfn import like, sigmoid, tanh
from .simd import wide_vectors


@njit(**OPTS)
def cell_forward(a, hw, c_prev, c, h):
    """One row of one step: ``a`` holds x W_ih^T + b_ih [4H] and gets the activated gates
    i, f, g, o; ``hw`` = h_{t-1} W_hh^T + b_hh; writes the cell state ``c`` and hidden state ``h``.
    (One loop computing all four gates of unit j: five independent tanh chains per vector of
    units kept the CPU busy where four short loops, one per gate, ran 1.75x slower at H=32.)"""
    wide_vectors()
    H = c.size
    for j in range(H):
        i = sigmoid(a[j] + hw[j])
        f = sigmoid(a[H + j] + hw[H + j])
        g = tanh(a[2 * H + j] + hw[2 * H + j])
        o = sigmoid(a[3 * H + j] + hw[3 * H + j])
        a[j], a[H + j], a[2 * H + j], a[3 * H + j] = i, f, g, o
        c_j = f * c_prev[j] + i * g  # c = f * c_prev + i * g
        c[j] = c_j
        h[j] = o * tanh(c_j)  # h = o * tanh(c)


@njit(**OPTS)
def forward(W, x, start, out, hw, active):
    """``out = (hs, cs, gates)``: hs, cs ``[T, R, H]`` and the activated gates ``[T, R, 4H]``
    (the backward pass needs them) for the rows r < active[t], from ``start = (h0, c0,
    h0_zero)``, ``(h0, c0) [R, H]``; ``hw [R, 4H]`` is scratch. ``W = (W_ih, W_hh^T, b_ih,
    b_hh)`` (W_hh^T: the fused epoch keeps it, transposed once per batch)."""
    Wih, WhhT, b_ih, b_hh = W
    h0, c0, h0_zero = start
    hs, cs, gates = out
    affine_steps(Wih, b_ih, x, gates, active)  # x_t W_ih^T + b_ih, every step at once
    for t in range(x.shape[0]):
        R = active[t]
        if R == 0:
            break
        h_prev = hs[t - 1] if t > 0 else h0
        c_prev = cs[t - 1] if t > 0 else c0
        # hw = b_hh + h_{t-1} W_hh^T
        if t > 0 or not h0_zero:
            affine_t(WhhT, b_hh, h_prev[:R], hw[:R])
        else:
            fill_rows(hw[:R], b_hh)
        for r in range(R):
            cell_forward(gates[t, r], hw[r], c_prev[r], cs[t, r], hs[t, r])


@njit(**OPTS)
def cell_backward(gate, c, c_prev, dh_above, dh_next, dc_next, da):
    """One row of one step: ``da`` = dL/d(pre-activations) [4H]; ``dc_next`` becomes dL/dc_{t-1}
    through c_t. ``dh_next`` holds dL/dh_t through step t+1 (added to ``dh_above``)."""
    wide_vectors()
    H = c.size
    for j in range(H):
        i, f, g, o = gate[j], gate[H + j], gate[2 * H + j], gate[3 * H + j]
        u = like(i, 1)
        tanh_c = tanh(c[j])
        dh = dh_above[j] + dh_next[j]
        # h = o * tanh(c):  do = dh * tanh(c);  dc = dh * o * (1 - tanh(c)^2) + dc_next
        do = dh * tanh_c
        dc = dh * o * (u - tanh_c * tanh_c) + dc_next[j]
        # c = f * c_prev + i * g, then through sigmoid' = s (1 - s) and tanh' = 1 - g^2
        da[j] = dc * g * i * (u - i)
        da[H + j] = dc * c_prev[j] * f * (u - f)
        da[2 * H + j] = dc * i * (u - g * g)
        da[3 * H + j] = do * o * (u - o)
        dc_next[j] = dc * f


@njit(**OPTS)
def backward(W, seq, start, flow, grads, scratch, active):
    """Backpropagate ``dhs [T, R, H]`` (dL/dh from above; ``flow = (dhs, need_dx, dx)``)
    through ``seq = (x, hs, cs, gates)`` from ``start = (h0, c0, h0_zero)``, ``W = (W_ih,
    W_hh)``; add the weight gradients to ``grads`` (the two biases get the same); write ``dx``
    if asked. ``scratch = (da, dh_next, dc_next)``: ``da [R, 4H]`` (dL/d(pre-activations) of
    step t), ``dh_next``, ``dc_next [R, H]`` (dL/dh_t, dL/dc_t through step t+1). ``gates``
    is overwritten: on return its
    live rows hold da of their step, which the weight gradients, bias sums and dx then take
    over every step's rows at once, after the recurrence."""
    (Wih, Whh), (x, hs, cs, gates), (h0, c0, h0_zero) = W, seq, start
    (dhs, need_dx, dx), (gWih, gWhh, gb_ih, gb_hh), (da, dh_next, dc_next) = flow, grads, scratch
    T = x.shape[0]
    dh_next[:, :] = 0
    dc_next[:, :] = 0
    for t in range(T - 1, -1, -1):
        R = active[t]  # rows r >= R: past their end (their dh_next, dc_next are still 0)
        if R == 0:
            continue
        c_prev = cs[t - 1] if t > 0 else c0
        for r in range(R):
            cell_backward(
                gates[t, r], cs[t, r], c_prev[r], dhs[t, r], dh_next[r], dc_next[r], da[r]
            )
            gates[t, r, :] = da[r]
        if t > 0:
            product_t(Whh, da[:R], dh_next[:R])  # dh_{t-1} (through step t) = da_t W_hh
    # dW_hh += da_t^T h_{t-1},  dW_ih += da_t^T x_t,  db += da_t,  dx_t = da_t W_ih
    if T > 1:
        add_outer_steps(gWhh, gates[1:], hs[: T - 1], active[1:])
    if not h0_zero and T > 0:
        add_outer(gWhh, gates[0, : active[0]], h0[: active[0]])
    add_outer_steps(gWih, gates, x, active)
    add_rows_steps(gb_ih, gates, active)
    add_rows_steps(gb_hh, gates, active)
    if need_dx:
        for t in range(T):
            dx[t, : active[t]] = 0
        add_product_steps(Wih, gates, dx, active)


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def layer_forward(w, x, state0, active, relu=False):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0, c0)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs, cs)`` and the cache."""
    h0, c0 = (np.ascontiguousarray(s) for s in state0)
    x = np.ascontiguousarray(x)
    T, N, _ = x.shape
    G, H = w["weight_hh"].shape
    hs, cs = np.zeros((T, N, H), x.dtype), np.zeros((T, N, H), x.dtype)
    gates = np.zeros((T, N, G), x.dtype)
    hw = np.empty((N, G), x.dtype)
    W = (w["weight_ih"], transposed(w["weight_hh"]), w["bias_ih"], w["bias_hh"])
    forward(W, x, (h0, c0, False), (hs, cs, gates), hw, active)
    return hs, (hs, cs), (x, hs, cs, gates, h0, c0, active)


def layer_backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, cs, gates, h0, c0, active = cache
    g = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    da = np.empty((x.shape[1], w["weight_hh"].shape[0]), x.dtype)
    W = (np.ascontiguousarray(w["weight_ih"]), np.ascontiguousarray(w["weight_hh"]))
    seq = (x, hs, cs, gates.copy())
    flow = (np.ascontiguousarray(dhs), True, dx)
    grads = (g["weight_ih"], g["weight_hh"], g["bias_ih"], g["bias_hh"])
    scratch = (da, np.empty_like(h0), np.empty_like(h0))
    backward(W, seq, (h0, c0, False), flow, grads, scratch, active)
    return g, dx
