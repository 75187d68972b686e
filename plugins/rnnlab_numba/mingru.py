"""The numba backend's minGRU layer, as plugins/rnnlab_numpy/mingru.py (rows z, then h~ of
W_ih, b_ih):

    z_t  = sigmoid(W_z x_t + b_z)        h~_t = W_h x_t + b_h
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t                      output h_t

The gates read the input only, so the recurrence is linear in h and elementwise: the input
projection of every step is one product before the scan, and the weight gradients, bias sums
and dx are one product each after it. Arrays time-major ``[T, R, F]``; step t runs on the rows
``[:active[t]]`` (rows sorted longest first, lengths.py); entries past a row's end are never
read, and are 0 in hs and dx. The kernels write into the caller's buffers.
"""

import numpy as np

from .blocks import OPTS, add_outer_steps, add_product_steps, add_rows_steps, affine_steps
from .jitcache import njit
from .mathfn import like, sigmoid
from .simd import wide_vectors


@njit(**OPTS)
def scan_forward(gates, h0, hs, active):
    """``gates [T, R, 2H]`` holds the pre-activations of z and h~ and gets z activated; the
    states into ``hs``, from ``h0 [R, H]``."""
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
                z = sigmoid(g[j])
                g[j] = z
                h[j] = (like(z, 1) - z) * hp[j] + z * g[H + j]


@njit(**OPTS)
def forward(W, x, h0, hs, gates, active):
    """hs ``[T, R, H]`` and the gates ``[T, R, 2H]`` (z activated, h~) for the rows r <
    active[t], from ``h0 [R, H]``; ``W = (W_ih, b_ih)``."""
    Wih, b_ih = W
    affine_steps(Wih, b_ih, x, gates, active)  # every step's projection at once
    scan_forward(gates, h0, hs, active)


@njit(**OPTS)
def scan_backward(seq, h0, dhs, carry, active):
    """BPTT through the elementwise recurrence, ``seq = (hs, gates)``: on return the live rows
    of ``gates`` hold dL/d(pre-activations) of z and h~. ``carry [R, H]`` is scratch.

    dh = dL/dh_t + dh_{t+1} (1 - z_{t+1});  da_z = dh (h~ - h_{t-1}) z (1 - z);  da_h = dh z"""
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
            g, hp, d, c = gates[t, r], h_prev[r], dhs[t, r], carry[r]
            for j in range(H):
                z, cand = g[j], g[H + j]
                u = like(z, 1)
                dh = d[j] + c[j]
                g[j] = dh * (cand - hp[j]) * z * (u - z)
                g[H + j] = dh * z
                c[j] = dh * (u - z)


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
    [T, R, H]`` (0 elsewhere on entry), from the forward's ``gates`` (z activated) and
    ``dhs``, dL/dh_t through step t's output only: total_t = dhs_t + (1 - z_{t+1}) total_{t+1}.
    For the diagnostics' gradient flow; the epoch does not use it."""
    T, H = totals.shape[0], totals.shape[2]
    for t in range(T - 1, -1, -1):
        for r in range(active[t]):
            d, out = dhs[t, r], totals[t, r]
            if t + 1 < T and r < active[t + 1]:
                z, later = gates[t + 1, r], totals[t + 1, r]
                for j in range(H):
                    out[j] = d[j] + (like(z[j], 1) - z[j]) * later[j]
            else:
                out[:] = d


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def layer_forward(w, x, state0, active, nonlinearity=None):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs,)`` and the cache."""
    x, h0 = np.ascontiguousarray(x), np.ascontiguousarray(state0[0])
    T, N, _ = x.shape
    G = w["weight_ih"].shape[0]
    hs, gates = np.zeros((T, N, G // 2), x.dtype), np.zeros((T, N, G), x.dtype)
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
