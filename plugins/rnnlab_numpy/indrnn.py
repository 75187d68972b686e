"""IndRNN layer (Li et al. 2018): every unit recurs on itself only, through u = weight_hh [H]:

    h_t = act(W_ih x_t + b_ih + u * h_{t-1})          act: relu (default) or tanh

With ``lengths`` (see :mod:`.masking`) a finished sequence keeps its state and outputs 0.
"""

import numpy as np

from .masking import hold, ignore_padding, select_input


def forward(w, x, state0, nonlinearity="relu", lengths=None):
    (h,) = state0
    valid, x = select_input(x, lengths)
    xw = x @ w["weight_ih"].T + w["bias_ih"]
    u = w["weight_hh"]
    hs = np.empty(xw.shape, dtype=xw.dtype)
    for t in range(x.shape[0]):
        a = xw[t] + u * h
        h = hold(valid, t, np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0), h, hs)
    return hs, (h,), (x, hs, state0[0], nonlinearity, valid)


def _bptt(w, cache, dhs):
    x, hs, h0, nonlinearity, valid = cache
    dhs = ignore_padding(dhs, valid)
    # h = act(a):  act' = 1 - h^2 (tanh) or [h > 0] (relu)
    deriv = 1.0 - hs * hs if nonlinearity == "tanh" else (hs > 0).astype(hs.dtype)
    u = w["weight_hh"]
    da = np.empty_like(hs)
    total = np.empty_like(hs)  # dL/dh_t
    carry = np.zeros_like(hs[0])
    for t in range(x.shape[0] - 1, -1, -1):
        dh = total[t] = dhs[t] + carry
        da[t] = dh * deriv[t]
        carry = da[t] * u
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0)
    H = hs.shape[-1]
    flat = da.reshape(-1, H)
    grads = {
        "weight_ih": flat.T @ x.reshape(-1, x.shape[-1]),
        "weight_hh": np.einsum("tnh,tnh->h", da, h_prev),
        "bias_ih": flat.sum(axis=0),
    }
    return grads, da @ w["weight_ih"], total


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    return _bptt(w, cache, dhs)[:2]


def state_gradients(w, cache, dhs):
    """dL/dh_t at every step (through the outputs of step t and every later step)."""
    return _bptt(w, cache, dhs)[2]
