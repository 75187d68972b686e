"""LSTM layer, as torch.nn.LSTM (gate order i, f, g, o in the rows of W_ih, W_hh, b_ih, b_hh):

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh   (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

With ``lengths`` (see :mod:`.masking`), sequence n stops at step lengths[n] - 1: its state (h, c)
is held from there on and its outputs are 0.
"""

import numpy as np

from .grads import weight_grads
from .masking import ignore_padding, select_input


def sigmoid(a):
    # sigmoid(a) = (1 + tanh(a/2)) / 2: the same function, and no overflow for large |a|
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def forward(w, x, state0, nonlinearity=None, lengths=None):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0, c0)``; ``nonlinearity`` is unused."""
    T = x.shape[0]
    h, c = state0
    H = h.shape[-1]
    valid, x = select_input(x, lengths)
    # the input projection of every step at once: xw[t] = x_t W_ih^T + b_ih + b_hh
    xw = x @ w["weight_ih"].T + (w["bias_ih"] + w["bias_hh"])
    gates = np.empty(xw.shape, dtype=xw.dtype)  # activated i, f, g, o of every step
    hs = np.empty(xw.shape[:2] + (H,), dtype=xw.dtype)
    cs = np.empty_like(hs)
    W_hh_T = w["weight_hh"].T
    for t in range(T):
        a = xw[t] + h @ W_hh_T
        gates[t, :, : 2 * H] = sigmoid(a[:, : 2 * H])  # i, f
        gates[t, :, 2 * H : 3 * H] = np.tanh(a[:, 2 * H : 3 * H])  # g
        gates[t, :, 3 * H :] = sigmoid(a[:, 3 * H :])  # o
        i, f, g, o = np.split(gates[t], 4, axis=-1)
        if valid is None:
            c = f * c + i * g
            h = o * np.tanh(c)
            cs[t], hs[t] = c, h
        else:  # a finished sequence keeps its state and outputs 0
            c_t = f * c + i * g
            h_t = o * np.tanh(c_t)
            c, h = np.where(valid[t], c_t, c), np.where(valid[t], h_t, h)
            cs[t], hs[t] = c, np.where(valid[t], h_t, 0)
    return hs, (h, c), (x, hs, cs, gates, state0, valid)


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, cs, gates, (h0, c0), valid = cache
    T, H = x.shape[0], hs.shape[-1]
    dhs = ignore_padding(dhs, valid)  # then every padded step's gradient is exactly 0
    da = np.empty_like(gates)  # gradient of the gate pre-activations
    dh_next = np.zeros_like(hs[0])  # dL/dh_t through h_{t+1}
    dc_next = np.zeros_like(hs[0])  # dL/dc_t through c_{t+1}
    W_hh = w["weight_hh"]
    for t in range(T - 1, -1, -1):
        i, f, g, o = np.split(gates[t], 4, axis=-1)
        c_prev = cs[t - 1] if t > 0 else c0
        tanh_c = np.tanh(cs[t])
        dh = dhs[t] + dh_next
        # h = o * tanh(c):  do = dh * tanh(c);  dc = dh * o * (1 - tanh(c)^2) + dc_next
        do = dh * tanh_c
        dc = dh * o * (1.0 - tanh_c * tanh_c) + dc_next
        # c = f * c_prev + i * g
        di, df, dg = dc * g, dc * c_prev, dc * i
        # through the activations: sigmoid' = s (1 - s), tanh' = 1 - g^2
        da[t, :, :H] = di * i * (1.0 - i)
        da[t, :, H : 2 * H] = df * f * (1.0 - f)
        da[t, :, 2 * H : 3 * H] = dg * (1.0 - g * g)
        da[t, :, 3 * H :] = do * o * (1.0 - o)
        dc_next = dc * f
        dh_next = da[t] @ W_hh
    return weight_grads(w, x, h0, hs, da)
