"""Elman RNN layer, as torch.nn.RNN:  h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""

import numpy as np

from .grads import weight_grads


def forward(w, x, state0, nonlinearity):
    T = x.shape[0]
    (h,) = state0
    # the input projection of every step at once: xw[t] = x_t W_ih^T + b_ih + b_hh
    xw = x @ w["weight_ih"].T + (w["bias_ih"] + w["bias_hh"])
    hs = np.empty(xw.shape, dtype=xw.dtype)
    W_hh_T = w["weight_hh"].T
    for t in range(T):
        z = xw[t] + h @ W_hh_T
        h = np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)
        hs[t] = h
    return hs, (h,), (x, hs, state0[0], nonlinearity)


def backward(w, cache, dhs):
    x, hs, h0, nonlinearity = cache
    T = x.shape[0]
    # dz_t = (dL/dh_t + dz_{t+1} W_hh) * f'(z_t);  f' = 1 - h^2 (tanh) or [h > 0] (relu)
    deriv = 1.0 - hs * hs if nonlinearity == "tanh" else (hs > 0).astype(hs.dtype)
    dz = np.empty_like(hs)
    carry = np.zeros_like(hs[0])
    W_hh = w["weight_hh"]
    for t in range(T - 1, -1, -1):
        dz[t] = (dhs[t] + carry) * deriv[t]
        carry = dz[t] @ W_hh
    return weight_grads(w, x, h0, hs, dz)
