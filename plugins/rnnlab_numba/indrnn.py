"""The numba backend's IndRNN layer, as plugins/rnnlab_numpy/indrnn.py: every unit recurs on
itself only, through the vector u = weight_hh [H]:

    h_t = act(W_ih x_t + b_ih + u * h_{t-1})          act: relu (default) or tanh

The input projection of every step is one product before the recurrence, which is
elementwise; the weight gradients, bias sums and dx are one product each after it. Arrays
time-major ``[T, R, F]``; lengths (``active``) as in rnn.py; the kernels write into the
caller's buffers.
"""

import numpy as np

from .blocks import OPTS, add_outer_steps, add_product_steps, add_rows_steps, affine_steps
from .jitcache import njit
from .mathfn import like, tanh, zero
from .simd import wide_vectors


@njit(**OPTS)
def scan_forward(u, h0, hs, relu, active):
    """``hs [T, R, H]`` holds W_ih x_t + b_ih and gets h_t, from ``h0 [R, H]``."""
    wide_vectors()
    H = hs.shape[2]
    for t in range(hs.shape[0]):
        R = active[t]
        if R == 0:
            break
        h_prev = hs[t - 1] if t > 0 else h0
        for r in range(R):
            h, hp = hs[t, r], h_prev[r]
            if relu:
                for j in range(H):
                    a = h[j] + u[j] * hp[j]
                    h[j] = zero(a) if a < zero(a) else a  # written so that NaN passes through
            else:
                for j in range(H):
                    h[j] = tanh(h[j] + u[j] * hp[j])


@njit(**OPTS)
def forward(W, x, h0, hs, relu, active):
    """hs ``[T, R, H]`` for the rows r < active[t], from ``h0 [R, H]``; ``W = (W_ih, u,
    b_ih)``."""
    Wih, u, b_ih = W
    affine_steps(Wih, b_ih, x, hs, active)  # every step's projection at once
    scan_forward(u, h0, hs, relu, active)


@njit(**OPTS)
def scan_backward(u, seq, relu, da, gu, active):
    """BPTT through the elementwise recurrence, ``seq = (hs, h0)``: ``da [T, R, H]`` holds
    dL/dh from above and gets dL/da_t (a_t the pre-activation); ``gu += sum da_t h_{t-1}``.

    da_t = (dL/dh_t + da_{t+1} u) act'(a_t),  act' = [h > 0] (relu) or 1 - h^2 (tanh)"""
    wide_vectors()
    hs, h0 = seq
    H = hs.shape[2]
    for t in range(hs.shape[0] - 1, -1, -1):
        R = active[t]
        if R == 0:
            continue
        h_prev = hs[t - 1] if t > 0 else h0
        for r in range(R):
            h, hp, d = hs[t, r], h_prev[r], da[t, r]
            later = t + 1 < hs.shape[0] and r < active[t + 1]
            for j in range(H):
                dh = d[j] + u[j] * da[t + 1, r, j] if later else d[j]
                if relu:
                    d[j] = dh if h[j] > zero(h[j]) else zero(h[j])
                else:
                    d[j] = dh * (like(h[j], 1) - h[j] * h[j])
                gu[j] += d[j] * hp[j]


@njit(**OPTS)
def backward(W, seq, relu, flow, grads, active):
    """Backpropagate ``flow = (dhs, need_dx, dx)`` through ``seq = (x, hs, h0)``; add the
    weight gradients to ``grads = (gW_ih, gu, gb_ih)``; write ``dx`` if asked. ``dhs`` is
    overwritten: on return its live rows hold dL/d(pre-activations)."""
    Wih, u, _ = W
    x, hs, h0 = seq
    dhs, need_dx, dx = flow
    gWih, gu, gb_ih = grads
    scan_backward(u, (hs, h0), relu, dhs, gu, active)
    T = x.shape[0]
    add_outer_steps(gWih, dhs[:T], x, active)
    add_rows_steps(gb_ih, dhs[:T], active)
    if need_dx:
        for t in range(T):
            dx[t, : active[t]] = 0
        add_product_steps(Wih, dhs[:T], dx, active)


@njit(**OPTS)
def scan_totals(u, hs, relu, dhs, active, totals):
    """dL/dh_t through step t's output and every later step into the live rows of ``totals
    [T, R, H]`` (0 elsewhere on entry), from the states ``hs`` and ``dhs``, dL/dh_t through
    step t's output only: total_t = dhs_t + u act'(a_{t+1}) total_{t+1}. For the diagnostics'
    gradient flow; the epoch does not use it."""
    T, H = totals.shape[0], totals.shape[2]
    for t in range(T - 1, -1, -1):
        for r in range(active[t]):
            d, out = dhs[t, r], totals[t, r]
            if t + 1 < T and r < active[t + 1]:
                h, later = hs[t + 1, r], totals[t + 1, r]
                for j in range(H):
                    if relu:
                        da = later[j] if h[j] > zero(h[j]) else zero(h[j])
                    else:
                        da = later[j] * (like(h[j], 1) - h[j] * h[j])
                    out[j] = d[j] + da * u[j]
            else:
                out[:] = d


def weights(w):
    return tuple(np.ascontiguousarray(w[k]) for k in ("weight_ih", "weight_hh", "bias_ih"))


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def layer_forward(w, x, state0, active, nonlinearity="relu"):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs,)`` and the cache."""
    x, h0 = np.ascontiguousarray(x), np.ascontiguousarray(state0[0])
    T, N, _ = x.shape
    hs = np.zeros((T, N, w["weight_ih"].shape[0]), x.dtype)
    relu = nonlinearity != "tanh"
    forward(weights(w), x, h0, hs, relu, active)
    return hs, (hs,), (x, hs, h0, relu, active)


def layer_backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, h0, relu, active = cache
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    flow = (np.array(dhs, order="C"), True, dx)  # a copy: backward overwrites it
    g = (grads["weight_ih"], grads["weight_hh"], grads["bias_ih"])
    backward(weights(w), (x, hs, h0), relu, flow, g, active)
    return grads, dx


def state_gradients(w, cache, dhs):
    """dL/dh_t at every step (through the outputs of step t and every later step), ``[T, N,
    H]``, 0 at padded steps."""
    _, hs, _, relu, active = cache
    totals = np.zeros_like(hs)
    u = np.ascontiguousarray(w["weight_hh"])
    scan_totals(u, hs, relu, np.ascontiguousarray(dhs, hs.dtype), active, totals)
    return totals
