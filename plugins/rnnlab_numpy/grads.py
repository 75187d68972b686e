"""What every cell's backward pass ends with: weight gradients as single products over all steps."""

import numpy as np


def weight_grads(w, x, h0, hs, d_in, d_rec=None):
    """Gradients of W_ih, W_hh, b_ih, b_hh, and of the layer's input, from the gradients of the
    pre-activations: ``d_in`` of ``x W_ih^T + b_ih`` and ``d_rec`` of ``h_{t-1} W_hh^T + b_hh``
    (the same array for rnn and lstm, whose two projections are summed; separate for gru, whose
    reset gate scales the recurrent part of n), each ``[T, N, G*H]``.

        dW_ih = sum_t d_in_t^T x_t      dW_hh = sum_t d_rec_t^T h_{t-1}      dx_t = d_in_t W_ih
    """
    d_rec = d_in if d_rec is None else d_rec
    G_H, H = d_in.shape[-1], hs.shape[-1]
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0)
    d_in2, d_rec2 = d_in.reshape(-1, G_H), d_rec.reshape(-1, G_H)
    db_in = d_in2.sum(axis=0)
    grads = {
        "weight_ih": d_in2.T @ x.reshape(-1, x.shape[-1]),
        "weight_hh": d_rec2.T @ h_prev.reshape(-1, H),
        "bias_ih": db_in,
        "bias_hh": db_in.copy() if d_rec is d_in else d_rec2.sum(axis=0),
    }
    return grads, d_in @ w["weight_ih"]
