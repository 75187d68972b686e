"""Elman RNN layer over a block of rows, as torch.nn.RNN:

    h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   f = tanh or relu

Arrays are time-major (``x [T, R, I]``, ``hs [T, R, H]``), as the layer contract passes them and
as lstm.py and gru.py keep them: each step works on one contiguous ``[R, H]`` block. The kernels
write into buffers the caller owns (the fused epoch allocates them once per runner); the layer
contract at the bottom allocates them per call.

Variable length: the kernels take ``active [T]``, how many rows take part in step t, with the
rows sorted longest first (``lengths.pack``), so that step t's rows are the prefix
``[:active[t]]``: a sequence's recurrence stops after its own last step, a step's products
cover only its live rows (cost follows the lengths), and padded entries are never read or
written (the layer contract allocates them as zeros). Every row live (``active[t] = R``) is the
fixed-length arithmetic, bit for bit.

``h0_zero``: the initial state is known to be 0, so its products are skipped (the fused epoch's
sequences start from zeros; a carried state passes False).
"""

import numpy as np
from numba import njit

from .blocks import OPTS, add_outer, add_product, add_rows, affine_steps, product
from .mathfn import like, tanh, zero


@njit(**OPTS)
def activate(z, relu):
    """h = tanh(z) or max(z, 0), in place, over the rows of ``z [R, H]``."""
    for r in range(z.shape[0]):
        zr = z[r]
        if relu:
            for j in range(zr.size):  # written so that NaN passes through
                zr[j] = zero(zr[j]) if zr[j] < zero(zr[j]) else zr[j]
        else:
            for j in range(zr.size):
                zr[j] = tanh(zr[j])


@njit(**OPTS)
def forward(Wih, Whh, bias, x, h0, h0_zero, relu, hs, active):
    """hs[t, r] for the rows r < active[t] (bias = b_ih + b_hh; h_{-1} = h0); other entries
    are left alone."""
    # z_t = bias + x_t W_ih^T, every step at once
    affine_steps(Wih, bias, x, hs, active)
    for t in range(x.shape[0]):
        R = active[t]
        if R == 0:  # no row reaches this step (nor any later one)
            break
        # z_t += h_{t-1} W_hh^T;  h_t = f(z_t)
        if t > 0:
            add_product(Whh, hs[t - 1, :R], hs[t, :R])
        elif not h0_zero:
            add_product(Whh, h0[:R], hs[t, :R])
        activate(hs[t, :R], relu)


@njit(**OPTS)
def backward(
    WihT,
    WhhT,
    x,
    hs,
    h0,
    h0_zero,
    relu,
    dhs,
    need_dx,
    dx,
    gWih,
    gWhh,
    gb_ih,
    gb_hh,
    dz,
    carry,
    active,
):
    """Backpropagate ``dhs [T, R, H]`` (dL/dh from above) through the block; add the weight
    gradients to ``gWih``, ``gWhh``, ``gb_ih``, ``gb_hh`` (the two biases get the same); write
    ``dx [T, R, I]`` if asked. ``WihT``/``WhhT`` are the transposed weights; ``dz``, ``carry``
    are ``[R, H]`` scratch. A row's BPTT starts at its own last step (its carry is still 0).

    dz_t = (dL/dh_t + dz_{t+1} W_hh) * f'(z_t),  f' = 1 - h^2 (tanh) or [h > 0] (relu)
    dW_ih += dz_t^T x_t,  dW_hh += dz_t^T h_{t-1},  db += dz_t,  dx_t = dz_t W_ih
    """
    H = hs.shape[2]
    carry[:, :] = 0
    for t in range(x.shape[0] - 1, -1, -1):
        R = active[t]
        if R == 0:
            continue
        for r in range(R):
            h, d, c, z = hs[t, r], dhs[t, r], carry[r], dz[r]
            if relu:
                for j in range(H):
                    z[j] = d[j] + c[j] if h[j] > zero(h[j]) else zero(h[j])
            else:
                for j in range(H):
                    z[j] = (d[j] + c[j]) * (like(h[j], 1) - h[j] * h[j])
        if t > 0:
            product(WhhT, dz[:R], carry[:R])  # carry = dL/dh_{t-1} through step t
            add_outer(gWhh, dz[:R], hs[t - 1, :R])
        elif not h0_zero:
            add_outer(gWhh, dz[:R], h0[:R])
        if need_dx:
            product(WihT, dz[:R], dx[t, :R])
        add_outer(gWih, dz[:R], x[t, :R])
        add_rows(gb_ih, dz[:R])
        add_rows(gb_hh, dz[:R])


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def layer_forward(w, x, state0, active, relu=False):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs,)`` and the cache."""
    x, h0 = np.ascontiguousarray(x), np.ascontiguousarray(state0[0])
    T, N, _ = x.shape
    hs = np.zeros((T, N, w["weight_hh"].shape[0]), x.dtype)
    bias = w["bias_ih"] + w["bias_hh"]
    forward(w["weight_ih"], w["weight_hh"], bias, x, h0, False, relu, hs, active)
    return hs, (hs,), (x, hs, h0, relu, active)


def layer_backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, h0, relu, active = cache
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    dz, carry = np.empty_like(h0), np.empty_like(h0)
    backward(
        np.ascontiguousarray(w["weight_ih"].T),
        np.ascontiguousarray(w["weight_hh"].T),
        x,
        hs,
        h0,
        False,
        relu,
        np.ascontiguousarray(dhs),
        True,
        dx,
        grads["weight_ih"],
        grads["weight_hh"],
        grads["bias_ih"],
        grads["bias_hh"],
        dz,
        carry,
        active,
    )
    return grads, dx
