"""minLSTM layer (Feng et al. 2024, "Were RNNs All We Needed?"), rows f, i, h~ of W_ih, b_ih:

    f_t = sigmoid(W_f x_t + b_f)      i_t = sigmoid(W_i x_t + b_i)      h~_t = W_h x_t + b_h
    f'_t = f_t / (f_t + i_t)          i'_t = i_t / (f_t + i_t)
    h_t = f'_t * h_{t-1} + i'_t * h~_t                                   output h_t

With ``lengths`` (see :mod:`.masking`) a finished sequence keeps its state and outputs 0.
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
    f, i, cand = sigmoid(a[..., :H]), sigmoid(a[..., H : 2 * H]), a[..., 2 * H :]
    s = f + i
    fp, ip = f / s, i / s
    hs = np.empty(f.shape, dtype=a.dtype)
    for t in range(x.shape[0]):
        h = hold(valid, t, fp[t] * h + ip[t] * cand[t], h, hs)
    return hs, (h,), (x, hs, f, i, cand, state0[0], valid)


def _bptt(w, cache, dhs):
    x, hs, f, i, cand, h0, valid = cache
    H = hs.shape[-1]
    dhs = ignore_padding(dhs, valid)
    s = f + i
    fp, ip = f / s, i / s
    da = np.empty((*hs.shape[:2], 3 * H), dtype=hs.dtype)
    total = np.empty_like(hs)  # dL/dh_t
    carry = np.zeros_like(hs[0])
    for t in range(x.shape[0] - 1, -1, -1):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = total[t] = dhs[t] + carry
        dfp, dip = dh * h_prev, dh * cand[t]
        # f' = f / s, i' = i / s:  df = i (df' - di') / s^2,  di = f (di' - df') / s^2
        d = (dfp - dip) / (s[t] * s[t])
        da[t, :, :H] = i[t] * d * f[t] * (1.0 - f[t])
        da[t, :, H : 2 * H] = -f[t] * d * i[t] * (1.0 - i[t])
        da[t, :, 2 * H :] = dh * ip[t]
        carry = dh * fp[t]
    flat = da.reshape(-1, 3 * H)
    grads = {"weight_ih": flat.T @ x.reshape(-1, x.shape[-1]), "bias_ih": flat.sum(axis=0)}
    return grads, da @ w["weight_ih"], total


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    return _bptt(w, cache, dhs)[:2]


def state_gradients(w, cache, dhs):
    """dL/dh_t at every step (through the outputs of step t and every later step)."""
    return _bptt(w, cache, dhs)[2]
