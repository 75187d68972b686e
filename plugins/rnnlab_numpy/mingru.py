"""minGRU layer (Feng et al. 2024, "Were RNNs All We Needed?"), rows z then h~ of W_ih, b_ih:

    z_t  = sigmoid(W_z x_t + b_z)
    h~_t = W_h x_t + b_h
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t          output h_t

The gates read the input only, so every step's projection is one product; the recurrence is
elementwise. With ``lengths`` (see :mod:`.masking`) a finished sequence keeps its state and
outputs 0.
"""

import numpy as np

from .lstm import sigmoid
from .masking import hold, ignore_padding, select_input


def forward(w, x, state0, nonlinearity=None, lengths=None):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``; ``nonlinearity`` is unused."""
    (h,) = state0
    H = h.shape[-1]
    valid, x = select_input(x, lengths)
    a = x @ w["weight_ih"].T + w["bias_ih"]
    z, cand = sigmoid(a[..., :H]), a[..., H:]
    hs = np.empty(z.shape, dtype=a.dtype)
    for t in range(x.shape[0]):
        h = hold(valid, t, (1.0 - z[t]) * h + z[t] * cand[t], h, hs)
    return hs, (h,), (x, hs, z, cand, state0[0], valid)


def _bptt(w, cache, dhs):
    x, hs, z, cand, h0, valid = cache
    H = hs.shape[-1]
    dhs = ignore_padding(dhs, valid)
    da = np.empty((*hs.shape[:2], 2 * H), dtype=hs.dtype)
    total = np.empty_like(hs)  # dL/dh_t
    carry = np.zeros_like(hs[0])
    for t in range(x.shape[0] - 1, -1, -1):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = total[t] = dhs[t] + carry
        # h = (1 - z) h_prev + z cand
        da[t, :, :H] = dh * (cand[t] - h_prev) * z[t] * (1.0 - z[t])
        da[t, :, H:] = dh * z[t]
        carry = dh * (1.0 - z[t])
    flat = da.reshape(-1, 2 * H)
    grads = {"weight_ih": flat.T @ x.reshape(-1, x.shape[-1]), "bias_ih": flat.sum(axis=0)}
    return grads, da @ w["weight_ih"], total


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    return _bptt(w, cache, dhs)[:2]


def state_gradients(w, cache, dhs):
    """dL/dh_t at every step (through the outputs of step t and every later step)."""
    return _bptt(w, cache, dhs)[2]
