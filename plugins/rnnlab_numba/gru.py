"""The numba backend's GRU layer, as torch.nn.GRU and plugins/rnnlab_numpy/gru.py (gate order
r, z, n in the rows of W_ih, W_hh, b_ih, b_hh):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shaped like lstm.py: the input projection of every step before the recurrence, the weight
gradients, bias sums and dx over every step at once after it (dha stored in place of the gates,
dxa's n block in place of hn); arrays time-major ``[T, R, F]`` (see lstm.py for why),
kernels writing into the caller's buffers. Variable length and ``h0_zero`` as in rnn.py: step t
runs on the rows ``[:active[t]]`` (rows sorted longest first); entries past a row's end are
never read, and are 0 in hs and dx.
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
    affine_t,
    fill_rows,
    transposed,
)
from .jitcache import njit
from .mathfn import like, sigmoid, tanh
from .simd import wide_vectors


@njit(**OPTS)
def cell_forward(a, hw, h_prev, hn, h):
    """One row of one step: ``a`` holds x W_ih^T + b_ih [3H] and gets the activated gates
    r, z, n; ``hw`` = h_{t-1} W_hh^T + b_hh; writes ``hn`` = W_hn h_{t-1} + b_hn (the backward
    pass needs it) and the hidden state ``h``. (One loop for all gates of unit j, as lstm.py.)"""
    wide_vectors()
    H = h.size
    for j in range(H):
        r = sigmoid(a[j] + hw[j])
        z = sigmoid(a[H + j] + hw[H + j])
        hn_j = hw[2 * H + j]
        n = tanh(a[2 * H + j] + r * hn_j)  # n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        a[j], a[H + j], a[2 * H + j] = r, z, n
        hn[j] = hn_j
        h[j] = (like(n, 1) - z) * n + z * h_prev[j]  # h = (1 - z) n + z h_prev


@njit(**OPTS)
def forward(W, x, start, out, hw, active):
    """``out = (hs, gates, hn)``: hs ``[T, R, H]``, the activated gates ``[T, R, 3H]`` and
    ``hn [T, R, H]`` (the backward pass needs both) for the rows r < active[t], from ``start
    = (h0, h0_zero)``, ``h0 [R, H]``; ``hw [R, 3H]`` is scratch; ``W = (W_ih, W_hh^T, b_ih,
    b_hh)`` (W_hh^T: the fused epoch keeps it, transposed once per batch)."""
    Wih, WhhT, b_ih, b_hh = W
    h0, h0_zero = start
    hs, gates, hn = out
    affine_steps(Wih, b_ih, x, gates, active)  # x_t W_ih^T + b_ih, every step at once
    for t in range(x.shape[0]):
        R = active[t]
        if R == 0:
            break
        h_prev = hs[t - 1] if t > 0 else h0
        # hw = b_hh + h_{t-1} W_hh^T
        if t > 0 or not h0_zero:
            affine_t(WhhT, b_hh, h_prev[:R], hw[:R])
        else:
            fill_rows(hw[:R], b_hh)
        for r in range(R):
            cell_forward(gates[t, r], hw[r], h_prev[r], hn[t, r], hs[t, r])


@njit(**OPTS)
def cell_backward(gate, hn, h_prev, dh_above, dh_next, dxa, dha, dh_direct):
    """One row of one step: dL/d(input-side pre-activations) ``dxa`` and dL/d(hidden-side
    pre-activations) ``dha`` [3H], and ``dh_direct`` = dL/dh_{t-1} through ``z h_prev``.
    ``dh_next`` holds dL/dh_t through step t+1 (added to ``dh_above``)."""
    wide_vectors()
    H = hn.size
    for j in range(H):
        r, z, n = gate[j], gate[H + j], gate[2 * H + j]
        u = like(r, 1)
        dh = dh_above[j] + dh_next[j]
        # h = (1 - z) n + z h_prev
        dn = dh * (u - z)
        dz = dh * (h_prev[j] - n)
        # n = tanh(a_n),  a_n = xw_n + r * hn;  then sigmoid' = s (1 - s)
        dan = dn * (u - n * n)
        dar = dan * hn[j] * r * (u - r)
        daz = dz * z * (u - z)
        dxa[j], dxa[H + j], dxa[2 * H + j] = dar, daz, dan
        dha[j], dha[H + j], dha[2 * H + j] = dar, daz, dan * r
        dh_direct[j] = dh * z


@njit(**OPTS)
def backward(W, seq, start, flow, grads, scratch, active):
    """Backpropagate ``dhs [T, R, H]`` (dL/dh from above; ``flow = (dhs, need_dx, dx)``)
    through ``seq = (x, hs, gates, hn)`` from ``start = (h0, h0_zero)``, ``W = (W_ih,
    W_hh)``; add the weight gradients to ``grads``; write ``dx`` if asked. ``scratch = (dxa,
    dha, dh_next, dh_direct)``: ``dxa``, ``dha [R, 3H]`` (dL/d(x W_ih^T + b_ih), dL/d(h W_hh^T
    + b_hh) of step t), ``dh_next`` (dL/dh_t through step t+1) and ``dh_direct [R, H]``.
    ``gates`` and ``hn`` are overwritten: on return
    their live rows hold dha and the n block of dxa (dxa's r and z blocks are dha's), which
    the weight gradients, bias sums and dx then take over every step's rows at once (W_hh's
    gradient, the largest, in one sweep)."""
    (Wih, Whh), (x, hs, gates, hn), (h0, h0_zero) = W, seq, start
    (dhs, need_dx, dx), (gWih, gWhh, gb_ih, gb_hh) = flow, grads
    dxa, dha, dh_next, dh_direct = scratch
    T, H = x.shape[0], hs.shape[2]
    dh_next[:, :] = 0
    for t in range(T - 1, -1, -1):
        R = active[t]  # rows r >= R: past their end (their dh_next is still 0)
        if R == 0:
            continue
        h_prev = hs[t - 1] if t > 0 else h0
        for r in range(R):
            cell_backward(
                gates[t, r], hn[t, r], h_prev[r], dhs[t, r], dh_next[r], dxa[r], dha[r],
                dh_direct[r],
            )  # fmt: skip
            gates[t, r, :] = dha[r]
            hn[t, r, :] = dxa[r, 2 * H :]
        if t > 0:  # dh_{t-1} (through step t) = dh_t z_t + dha_t W_hh
            dh_next[:R] = dh_direct[:R]
            add_product_t(Whh, dha[:R], dh_next[:R])
        elif not h0_zero:  # dW_hh += dha_0^T h0 (dha still holds step 0)
            add_outer(gWhh, dha[:R], h0[:R])
    # dW_hh += dha_t^T h_{t-1};  db_hh += dha_t;  dW_ih += dxa_t^T x_t, db_ih += dxa_t, dx_t =
    # dxa_t W_ih: rows r, z from gates (the blocks read the first 2H of each of its rows), n
    # from hn
    if T > 1:
        add_outer_steps(gWhh, gates[1:], hs[: T - 1], active[1:])
    add_rows_steps(gb_hh, gates, active)
    add_outer_steps(gWih[: 2 * H], gates, x, active)
    add_outer_steps(gWih[2 * H :], hn, x, active)
    add_rows_steps(gb_ih[: 2 * H], gates, active)
    add_rows_steps(gb_ih[2 * H :], hn, active)
    if need_dx:
        for t in range(T):
            dx[t, : active[t]] = 0
        add_product_steps(Wih[: 2 * H], gates, dx, active)
        add_product_steps(Wih[2 * H :], hn, dx, active)


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def layer_forward(w, x, state0, active, relu=False):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``; return ``hs``, the states of every step ``(hs,)`` and the cache."""
    h0 = np.ascontiguousarray(state0[0])
    x = np.ascontiguousarray(x)
    T, N, _ = x.shape
    G, H = w["weight_hh"].shape
    hs, hn = np.zeros((T, N, H), x.dtype), np.zeros((T, N, H), x.dtype)
    gates = np.zeros((T, N, G), x.dtype)
    W = (w["weight_ih"], transposed(w["weight_hh"]), w["bias_ih"], w["bias_hh"])
    forward(W, x, (h0, False), (hs, gates, hn), np.empty((N, G), x.dtype), active)
    return hs, (hs,), (x, hs, gates, hn, h0, active)


def layer_backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    x, hs, gates, hn, h0, active = cache
    g = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    G = w["weight_hh"].shape[0]
    W = (np.ascontiguousarray(w["weight_ih"]), np.ascontiguousarray(w["weight_hh"]))
    seq = (x, hs, gates.copy(), hn.copy())
    flow = (np.ascontiguousarray(dhs), True, dx)
    grads = (g["weight_ih"], g["weight_hh"], g["bias_ih"], g["bias_hh"])
    N = x.shape[1]
    scratch = (np.empty((N, G), x.dtype), np.empty((N, G), x.dtype))
    scratch += (np.empty_like(h0), np.empty_like(h0))
    backward(W, seq, (h0, False), flow, grads, scratch, active)
    return g, dx
