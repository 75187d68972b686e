"""Elman RNN layer, as torch.nn.RNN:  h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

With ``lengths`` (see :mod:`.masking`), sequence n stops at step lengths[n] - 1: its state is held
from there on and its outputs are 0.
"""

import numpy as np

from .grads import weight_grads
from .masking import ignore_padding, select_input


def forward(w, x, state0, nonlinearity, lengths=None):
    T = x.shape[0]
    (h,) = state0
    valid, x = select_input(x, lengths)
    # the input projection of every step at once: xw[t] = x_t W_ih^T + b_ih + b_hh
    xw = x @ w["weight_ih"].T + (w["bias_ih"] + w["bias_hh"])
    hs = np.empty(xw.shape, dtype=xw.dtype)
    W_hh_T = w["weight_hh"].T
    for t in range(T):
        z = xw[t] + h @ W_hh_T
        h_t = np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)
        if valid is None:
            h = h_t
            hs[t] = h
        else:  # a finished sequence keeps its state and outputs 0
            h = np.where(valid[t], h_t, h)
            hs[t] = np.where(valid[t], h_t, 0)
    return hs, (h,), (x, hs, state0[0], nonlinearity, valid)


def backward(w, cache, dhs):
    x, hs, h0, nonlinearity, valid = cache
    T = x.shape[0]
    dhs = ignore_padding(dhs, valid)  # then every padded step's gradient is exactly 0
    # dz_t = (dL/dh_t + dz_{t+1} W_hh) * f'(z_t);  f' = 1 - h^2 (tanh) or [h > 0] (relu)
    deriv = 1.0 - hs * hs if nonlinearity == "tanh" else (hs > 0).astype(hs.dtype)
    dz = np.empty_like(hs)
    carry = np.zeros_like(hs[0])
    W_hh = w["weight_hh"]
    for t in range(T - 1, -1, -1):
        dz[t] = (dhs[t] + carry) * deriv[t]
        carry = dz[t] @ W_hh
    return weight_grads(w, x, h0, hs, dz)
