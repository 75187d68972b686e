"""The numba backend's minLSTM layer, as plugins/rnnlab_numpy/minlstm.py (rows f, i, h~ of
W_ih, b_ih):

    f_t = sigmoid(W_f x_t + b_f)      i_t = sigmoid(W_i x_t + b_i)      h~_t = W_h x_t + b_h
    f'_t = f_t / (f_t + i_t)          i'_t = i_t / (f_t + i_t)
    h_t = f'_t * h_{t-1} + i'_t * h~_t                                   output h_t

Shaped like mingru.py (its notes on the products, lengths and buffers hold here): the
recurrence is linear in h and elementwise; here are its scans.
"""

from .blocks import OPTS
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
