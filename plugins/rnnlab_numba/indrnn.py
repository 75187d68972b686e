"""The numba backend's IndRNN layer, as plugins/rnnlab_numpy/indrnn.py: every unit recurs on
itself only, through the vector u = weight_hh [H]:

    h_t = act(W_ih x_t + b_ih + u * h_{t-1})          act: relu (default) or tanh

The input projection of every step is one product before the recurrence, which is
elementwise, and the weight gradients, bias sums and dx are one product each after it
(diagonal.py, which also holds the layer contract); here are its scans. Arrays time-major
``[T, R, F]``; lengths (``active``) as in rnn.py; the kernels write into the caller's
buffers.
"""

from .blocks import OPTS
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
