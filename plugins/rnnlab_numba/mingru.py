"""The numba backend's minGRU layer, as plugins/rnnlab_numpy/mingru.py (rows z, then h~ of
W_ih, b_ih):

    z_t  = sigmoid(W_z x_t + b_z)        h~_t = W_h x_t + b_h
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t                      output h_t

The gates read the input only, so the recurrence is linear in h and elementwise; here are its
scans, between the input projection and its gradients' products (diagonal.py, which also
holds the layer contract). Arrays time-major ``[T, R, F]``; step t runs on the rows
``[:active[t]]`` (rows sorted longest first, lengths.py); entries past a row's end are never
read, and are 0 in hs. The kernels write into the caller's buffers.
"""

from .blocks import OPTS
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
