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

The kernels take their arguments in groups (tuples): ``W`` the weights, ``start`` the initial
state and whether it is zeros (``h0_zero``: its products are skipped), ``seq`` what the
forward pass kept, ``flow = (dhs, need_dx, dx)`` the gradient in and out, ``grads = (gW_ih,
gW_hh, gb_ih, gb_hh)`` the weight gradients to add to, ``scratch`` the per-step buffers.
"""

import numpy as np

from .blocks import (
    OPTS,
    add_outer,
    add_outer_steps,
    add_product_steps,
    add_product_t,
    add_rows_steps,
    affine_steps,
    product_t,
    transposed,
)
from .jitcache import njit
from .mathfn import like, tanh, zero
from .simd import wide_vectors


@njit(**OPTS)
def activate(z, relu):
    """h = tanh(z) or max(z, 0), in place, over the rows of ``z [R, H]``."""
    wide_vectors()
    for r in range(z.shape[0]):
        zr = z[r]
        if relu:
            for j in range(zr.size):  # written so that NaN passes through
                zr[j] = zero(zr[j]) if zr[j] < zero(zr[j]) else zr[j]
        else:
            for j in range(zr.size):
                zr[j] = tanh(zr[j])


@njit(**OPTS)
def forward(W, x, start, relu, hs, active):
    """hs[t, r] for the rows r < active[t] (``W = (W_ih, W_hh^T, bias)``, bias = b_ih + b_hh;
    ``start = (h0, h0_zero)``, h_{-1} = h0); other entries are left alone. W_hh^T: the
    products run in the outer-product form, blocks.py; the fused epoch keeps it, transposed
    once per batch."""
    Wih, WhhT, bias = W
    h0, h0_zero = start
    # z_t = bias + x_t W_ih^T, every step at once
    affine_steps(Wih, bias, x, hs, active)
    for t in range(x.shape[0]):
        R = active[t]
        if R == 0:  # no row reaches this step (nor any later one)
            break
        # z_t += h_{t-1} W_hh^T;  h_t = f(z_t)
        if t > 0:
            add_product_t(WhhT, hs[t - 1, :R], hs[t, :R])
        elif not h0_zero:
            add_product_t(WhhT, h0[:R], hs[t, :R])
        activate(hs[t, :R], relu)


@njit(**OPTS)
def backward(W, seq, start, relu, flow, grads, scratch, active):
    """Backpropagate ``dhs [T, R, H]`` (dL/dh from above; ``flow = (dhs, need_dx, dx)``)
    through the block, ``seq = (x, hs)``; add the weight gradients to ``grads`` (the two
    biases get the same); write ``dx [T, R, I]`` if asked (``W = (W_ih, W_hh)``, the weights
    as they are, the right-hand factors of dz W); ``scratch = (dz, carry)``, ``carry`` is
    ``[R, H]`` scratch (``dz`` is not used). A row's BPTT starts at its own last step (its
    carry is still 0). ``dhs`` is overwritten: on return its live rows hold dz.

    dz_t = (dL/dh_t + dz_{t+1} W_hh) * f'(z_t),  f' = 1 - h^2 (tanh) or [h > 0] (relu)
    dW_ih += dz_t^T x_t,  dW_hh += dz_t^T h_{t-1},  db += dz_t,  dx_t = dz_t W_ih

    The recurrence keeps only dz_t W_hh in the loop; dz of every step stays in ``dhs``, and
    the weight gradients, bias sums and dx run after it over every step's rows at once.
    """
    (Wih, Whh), (x, hs), (h0, h0_zero), (dhs, need_dx, dx) = W, seq, start, flow
    gWih, gWhh, gb_ih, gb_hh = grads
    carry = scratch[1]
    T, H = x.shape[0], hs.shape[2]
    carry[:, :] = 0
    for t in range(T - 1, -1, -1):
        R = active[t]
        if R == 0:
            continue
        for r in range(R):
            h, z, c = hs[t, r], dhs[t, r], carry[r]
            if relu:
                for j in range(H):
                    z[j] = z[j] + c[j] if h[j] > zero(h[j]) else zero(h[j])
            else:
                for j in range(H):
                    z[j] = (z[j] + c[j]) * (like(h[j], 1) - h[j] * h[j])
        if t > 0:
            product_t(Whh, dhs[t, :R], carry[:R])  # carry = dL/dh_{t-1} through step t
    if T > 1:
        add_outer_steps(gWhh, dhs[1:], hs[: T - 1], active[1:])
    if not h0_zero and T > 0:
        add_outer(gWhh, dhs[0, : active[0]], h0[: active[0]])
    add_outer_steps(gWih, dhs[:T], x, active)
    add_rows_steps(gb_ih, dhs[:T], active)
    add_rows_steps(gb_hh, dhs[:T], active)
    if need_dx:
        for t in range(T):
            dx[t, : active[t]] = 0
        add_product_steps(Wih, dhs[:T], dx, active)


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def layer_forward(w, x, state0, active, relu=False):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs,)`` and the cache."""
    x, h0 = np.ascontiguousarray(x), np.ascontiguousarray(state0[0])
    T, N, _ = x.shape
    hs = np.zeros((T, N, w["weight_hh"].shape[0]), x.dtype)
    bias = w["bias_ih"] + w["bias_hh"]
    forward((w["weight_ih"], transposed(w["weight_hh"]), bias), x, (h0, False), relu, hs, active)
    return hs, (hs,), (x, hs, h0, relu, active)


def layer_backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, h0, relu, active = cache
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    dz, carry = np.empty_like(h0), np.empty_like(h0)
    W = (np.ascontiguousarray(w["weight_ih"]), np.ascontiguousarray(w["weight_hh"]))
    flow = (np.array(dhs, order="C"), True, dx)  # a C-ordered copy: backward overwrites it
    g = (grads["weight_ih"], grads["weight_hh"], grads["bias_ih"], grads["bias_hh"])
    backward(W, (x, hs), (h0, False), relu, flow, g, (dz, carry), active)
    return grads, dx
