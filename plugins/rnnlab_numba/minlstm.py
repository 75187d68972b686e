"""The numba backend's minLSTM layer, as plugins/rnnlab_numpy/minlstm.py (rows f, i, h~ of
W_ih, b_ih):

    f_t = sigmoid(W_f x_t + b_f)      i_t = sigmoid(W_i x_t + b_i)      h~_t = W_h x_t + b_h
    f'_t = f_t / (f_t + i_t)          i'_t = i_t / (f_t + i_t)
    h_t = f'_t * h_{t-1} + i'_t * h~_t                                   output h_t

Shaped like mingru.py (its notes on the products, lengths and buffers hold here): the
recurrence is linear in h and elementwise.
"""

import numpy as np

from .blocks import OPTS, add_outer_steps, add_product_steps, add_rows_steps, affine_steps
from .jitcache import njit
from .mathfn import like, sigmoid
from .simd import wide_vectors


@njit(**OPTS)
def scan_forward(gates, h0, hs, active):
    """``gates [T, R, 3H]`` holds the pre-activations of f, i, h~ and gets f and i
    activated; the states into ``hs``, from ``h0 [R, H]``."""
    wide_vectors()
    H = hs.shape[2]
    for t in range(gates.shape[0]):
        R = active[t]
        if R == 0:
            break
        h_prev = hs[t - 1] if t > 0 else h0
        for r in range(R):
            g, hp, h = gates[t, r], h_prev[r], hs[t, r]
            for j in range(H):
                f, i = sigmoid(g[j]), sigmoid(g[H + j])
                g[j], g[H + j] = f, i
                s = f + i
                h[j] = f / s * hp[j] + i / s * g[2 * H + j]


@njit(**OPTS)
def forward(W, x, h0, hs, gates, active):
    """hs ``[T, R, H]`` and the gates ``[T, R, 3H]`` (f, i activated, h~) for the rows r <
    active[t], from ``h0 [R, H]``; ``W = (W_ih, b_ih)``."""
    Wih, b_ih = W
    affine_steps(Wih, b_ih, x, gates, active)  # every step's projection at once
    scan_forward(gates, h0, hs, active)


@njit(**OPTS)
def scan_backward(seq, h0, dhs, carry, active):
    """BPTT through the elementwise recurrence, ``seq = (hs, gates)``: on return the live rows
    of ``gates`` hold dL/d(pre-activations) of f, i and h~. ``carry [R, H]`` is scratch.

    dh = dL/dh_t + dh_{t+1} f'_{t+1};  with s = f + i and d = dh (h_{t-1} - h~) / s^2:
    da_f = i d f (1 - f),  da_i = -f d i (1 - i),  da_h = dh i'"""
    wide_vectors()
    hs, gates = seq
    H = hs.shape[2]
    carry[:, :] = 0
    for t in range(hs.shape[0] - 1, -1, -1):
        R = active[t]
        if R == 0:
            continue
        h_prev = hs[t - 1] if t > 0 else h0
        for r in range(R):
            g, hp, dd, c = gates[t, r], h_prev[r], dhs[t, r], carry[r]
            for j in range(H):
                f, i, cand = g[j], g[H + j], g[2 * H + j]
                u = like(f, 1)
                s = f + i
                dh = dd[j] + c[j]
                d = (dh * hp[j] - dh * cand) / (s * s)
                g[j] = i * d * f * (u - f)
                g[H + j] = -f * d * i * (u - i)
                g[2 * H + j] = dh * (i / s)
                c[j] = dh * (f / s)


@njit(**OPTS)
def backward(W, seq, h0, flow, grads, carry, active):
    """Backpropagate ``flow = (dhs, need_dx, dx)`` through ``seq = (x, hs, gates)``; add
    the weight gradients to ``grads = (gW_ih, gb_ih)``; write ``dx`` if asked. ``gates`` is
    overwritten (dL/d of its pre-activations); ``carry [R, H]`` is scratch."""
    Wih, _ = W
    x, hs, gates = seq
    dhs, need_dx, dx = flow
    gWih, gb_ih = grads
    scan_backward((hs, gates), h0, dhs, carry, active)
    T = x.shape[0]
    add_outer_steps(gWih, gates[:T], x, active)
    add_rows_steps(gb_ih, gates[:T], active)
    if need_dx:
        for t in range(T):
            dx[t, : active[t]] = 0
        add_product_steps(Wih, gates[:T], dx, active)


@njit(**OPTS)
def scan_totals(gates, dhs, active, totals):
    """dL/dh_t through step t's output and every later step into the live rows of ``totals
    [T, R, H]`` (0 elsewhere on entry), from the forward's ``gates`` (f, i activated) and
    ``dhs``, dL/dh_t through step t's output only: total_t = dhs_t + f'_{t+1} total_{t+1}.
    For the diagnostics' gradient flow; the epoch does not use it."""
    T, H = totals.shape[0], totals.shape[2]
    for t in range(T - 1, -1, -1):
        for r in range(active[t]):
            d, out = dhs[t, r], totals[t, r]
            if t + 1 < T and r < active[t + 1]:
                g, later = gates[t + 1, r], totals[t + 1, r]
                for j in range(H):
                    out[j] = d[j] + g[j] / (g[j] + g[H + j]) * later[j]
            else:
                out[:] = d


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def layer_forward(w, x, state0, active, nonlinearity=None):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs,)`` and the cache."""
    x, h0 = np.ascontiguousarray(x), np.ascontiguousarray(state0[0])
    T, N, _ = x.shape
    G = w["weight_ih"].shape[0]
    hs, gates = np.zeros((T, N, G // 3), x.dtype), np.zeros((T, N, G), x.dtype)
    W = (np.ascontiguousarray(w["weight_ih"]), np.ascontiguousarray(w["bias_ih"]))
    forward(W, x, h0, hs, gates, active)
    return hs, (hs,), (x, hs, gates, h0, active)


def layer_backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, gates, h0, active = cache
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    W = (np.ascontiguousarray(w["weight_ih"]), np.ascontiguousarray(w["bias_ih"]))
    flow = (np.ascontiguousarray(dhs), True, dx)
    g = (grads["weight_ih"], grads["bias_ih"])
    backward(W, (x, hs, gates.copy()), h0, flow, g, np.empty_like(h0), active)
    return grads, dx


def state_gradients(w, cache, dhs):
    """dL/dh_t at every step (through the outputs of step t and every later step), ``[T, N,
    H]``, 0 at padded steps."""
    _, hs, gates, _, active = cache
    totals = np.zeros_like(hs)
    scan_totals(gates, np.ascontiguousarray(dhs, hs.dtype), active, totals)
    return totals
