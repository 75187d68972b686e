"""GRU layer, as torch.nn.GRU (gate order r, z, n in the rows of W_ih, W_hh, b_ih, b_hh):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

With ``lengths`` (see :mod:`.masking`), sequence n stops at step lengths[n] - 1: its state is held
from there on and its outputs are 0.
"""

import numpy as np

from .grads import weight_grads
from .lstm import sigmoid
from .masking import ignore_padding, select_input


def forward(w, x, state0, nonlinearity=None, lengths=None):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``; ``nonlinearity`` is unused."""
    T = x.shape[0]
    (h,) = state0
    H = h.shape[-1]
    valid, x = select_input(x, lengths)
    # the input projection of every step at once: xw[t] = x_t W_ih^T + b_ih
    xw = x @ w["weight_ih"].T + w["bias_ih"]
    gates = np.empty(xw.shape, dtype=xw.dtype)  # activated r, z, n of every step
    hn = np.empty(xw.shape[:2] + (H,), dtype=xw.dtype)  # W_hn h_{t-1} + b_hn of every step
    hs = np.empty_like(hn)
    W_hh_T, b_hh = w["weight_hh"].T, w["bias_hh"]
    for t in range(T):
        hw = h @ W_hh_T + b_hh
        gates[t, :, : 2 * H] = sigmoid(xw[t, :, : 2 * H] + hw[:, : 2 * H])  # r, z
        r, z = gates[t, :, :H], gates[t, :, H : 2 * H]
        hn[t] = hw[:, 2 * H :]
        n = gates[t, :, 2 * H :] = np.tanh(xw[t, :, 2 * H :] + r * hn[t])
        if valid is None:
            h = (1.0 - z) * n + z * h
            hs[t] = h
        else:  # a finished sequence keeps its state and outputs 0
            h_t = (1.0 - z) * n + z * h
            h = np.where(valid[t], h_t, h)
            hs[t] = np.where(valid[t], h_t, 0)
    return hs, (h,), (x, hs, gates, hn, state0[0], valid)


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, gates, hn, h0, valid = cache
    T, H = x.shape[0], hs.shape[-1]
    dhs = ignore_padding(dhs, valid)  # then every padded step's gradient is exactly 0
    dxa = np.empty_like(gates)  # gradient of the input-side pre-activations  (x W_ih^T + b_ih)
    dha = np.empty_like(gates)  # gradient of the hidden-side pre-activations (h W_hh^T + b_hh)
    dh_next = np.zeros_like(hs[0])  # dL/dh_t through h_{t+1}
    W_hh = w["weight_hh"]
    for t in range(T - 1, -1, -1):
        r, z, n = np.split(gates[t], 3, axis=-1)
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dhs[t] + dh_next
        # h = (1 - z) n + z h_prev
        dn = dh * (1.0 - z)
        dz = dh * (h_prev - n)
        # n = tanh(a_n),  a_n = xw_n + r * hn
        dan = dn * (1.0 - n * n)
        dr = dan * hn[t]
        dar = dr * r * (1.0 - r)
        daz = dz * z * (1.0 - z)
        dxa[t, :, :H], dxa[t, :, H : 2 * H], dxa[t, :, 2 * H :] = dar, daz, dan
        dha[t, :, :H], dha[t, :, H : 2 * H], dha[t, :, 2 * H :] = dar, daz, dan * r
        dh_next = dh * z + dha[t] @ W_hh
    return weight_grads(w, x, h0, hs, dxa, dha)
