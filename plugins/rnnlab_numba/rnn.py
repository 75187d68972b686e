"""Elman RNN layer over a block of rows, as torch.nn.RNN:
h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

Arrays are row-major (``x [R, T, I]``, ``hs [R, T, H]``: one sequence per row), so a block of
rows can go to one thread. The products run four rows at a time: each weight row loaded feeds
four dot products whose sums stay in registers (``fastmath`` lets the sums be reassociated and
vectorised; only summation order differs from the NumPy reference).

Variable length: the kernels take ``active [T]``, how many rows take part in step t, with the
rows sorted longest first (``lengths.pack``), so that step t's rows are the prefix
``[:active[t]]``: a sequence's recurrence stops after its own last step, a step's products
cover only its live rows (cost follows the lengths), and padded entries are never read or
written (the callers allocate them as zeros). Every row live (``active[t] = R``) is the
fixed-length arithmetic, bit for bit.
"""

import numpy as np
from numba import njit

from .mathfn import tanh

OPTS = {"fastmath": {"contract", "reassoc", "nsz"}, "error_model": "numpy", "cache": True}


@njit(**OPTS)
def prev(hs, h0, r, t):
    """h[r, t-1]: the previous hidden state of row r (h0[r] at the first step)."""
    return hs[r, t - 1] if t > 0 else h0[r]


@njit(**OPTS)
def activate(z, relu):
    """h = tanh(z) or max(z, 0), in place."""
    if relu:
        for j in range(z.size):
            z[j] = 0.0 if z[j] < 0.0 else z[j]  # written so that NaN passes through
    else:
        for j in range(z.size):
            z[j] = tanh(z[j])


@njit(**OPTS)
def step4(Wih, Whh, bias, x0, x1, x2, x3, h0, h1, h2, h3, with_h, z0, z1, z2, z3):
    """Four rows of one step: z = bias + x W_ih^T (+ h W_hh^T)."""
    H, n_in = Wih.shape
    for j in range(H):
        b = bias[j]
        a0 = a1 = a2 = a3 = b * 0.0
        wi = Wih[j]
        for i in range(n_in):
            a0 += wi[i] * x0[i]
            a1 += wi[i] * x1[i]
            a2 += wi[i] * x2[i]
            a3 += wi[i] * x3[i]
        if with_h:
            wh = Whh[j]
            for k in range(H):
                a0 += wh[k] * h0[k]
                a1 += wh[k] * h1[k]
                a2 += wh[k] * h2[k]
                a3 += wh[k] * h3[k]
        z0[j], z1[j], z2[j], z3[j] = a0 + b, a1 + b, a2 + b, a3 + b


@njit(**OPTS)
def step1(Wih, Whh, bias, x0, h0, with_h, z0):
    """One row of one step (the rows left over by step4)."""
    H, n_in = Wih.shape
    for j in range(H):
        a0 = bias[j] * 0.0
        wi = Wih[j]
        for i in range(n_in):
            a0 += wi[i] * x0[i]
        if with_h:
            wh = Whh[j]
            for k in range(H):
                a0 += wh[k] * h0[k]
        z0[j] = a0 + bias[j]


@njit(**OPTS)
def block_forward(Wih, Whh, bias, x, h0, h0_zero, relu, hs, active):
    """hs[r, t] = f(bias + x[r, t] W_ih^T + h[r, t-1] W_hh^T) for the rows r < active[t] (bias
    = b_ih + b_hh; h[r, -1] = h0[r], skipped when ``h0_zero``); other entries are left alone."""
    T = x.shape[1]
    for t in range(T):
        R = active[t]
        if R == 0:  # no row reaches this step (nor any later one)
            break
        with_h = t > 0 or not h0_zero
        r = 0
        while r + 4 <= R:
            step4(
                Wih,
                Whh,
                bias,
                x[r, t],
                x[r + 1, t],
                x[r + 2, t],
                x[r + 3, t],
                prev(hs, h0, r, t),
                prev(hs, h0, r + 1, t),
                prev(hs, h0, r + 2, t),
                prev(hs, h0, r + 3, t),
                with_h,
                hs[r, t],
                hs[r + 1, t],
                hs[r + 2, t],
                hs[r + 3, t],
            )
            r += 4
        while r < R:
            step1(Wih, Whh, bias, x[r, t], prev(hs, h0, r, t), with_h, hs[r, t])
            r += 1
        for r in range(R):
            activate(hs[r, t], relu)


@njit(**OPTS)
def back4(WT, d0, d1, d2, d3, o0, o1, o2, o3):
    """Four rows of o = d W (W^T given as ``WT``, so each o[k] is a dot product over j)."""
    K = WT.shape[0]
    for k in range(K):
        w = WT[k]
        a0 = a1 = a2 = a3 = w[0] * 0.0
        for j in range(w.size):
            a0 += w[j] * d0[j]
            a1 += w[j] * d1[j]
            a2 += w[j] * d2[j]
            a3 += w[j] * d3[j]
        o0[k], o1[k], o2[k], o3[k] = a0, a1, a2, a3


@njit(**OPTS)
def back1(WT, d0, o0):
    K = WT.shape[0]
    for k in range(K):
        w = WT[k]
        a0 = w[0] * 0.0
        for j in range(w.size):
            a0 += w[j] * d0[j]
        o0[k] = a0


@njit(**OPTS)
def outer4(G, d0, d1, d2, d3, v0, v1, v2, v3):
    """G += d^T v summed over four rows: G[j] += d0[j] v0 + d1[j] v1 + d2[j] v2 + d3[j] v3."""
    for j in range(G.shape[0]):
        g = G[j]
        e0, e1, e2, e3 = d0[j], d1[j], d2[j], d3[j]
        for k in range(g.size):
            g[k] += e0 * v0[k] + e1 * v1[k] + e2 * v2[k] + e3 * v3[k]


@njit(**OPTS)
def outer1(G, d0, v0):
    for j in range(G.shape[0]):
        g = G[j]
        e0 = d0[j]
        for k in range(g.size):
            g[k] += e0 * v0[k]


@njit(**OPTS)
def block_backward(
    WihT, WhhT, x, hs, h0, h0_zero, relu, dhs, need_dx, dx, gWih, gWhh, gb, dz, carry, active
):
    """Backpropagate ``dhs [R, T, H]`` (dL/dh from above) through the block; add the weight
    gradients to ``gWih [H, I]``, ``gWhh [H, H]``, ``gb [H]``; write ``dx [R, T, I]`` if asked.
    ``WihT``/``WhhT`` are the transposed weights; ``dz``, ``carry`` are ``[R, H]`` scratch.
    Only the rows r < active[t] take part in step t: a row's BPTT starts at its own last step
    (its carry is still 0 there), and dhs and dx are neither read nor written elsewhere.

    dz_t = (dL/dh_t + dz_{t+1} W_hh) * f'(z_t),  f' = 1 - h^2 (tanh) or [h > 0] (relu)
    dW_ih += dz_t^T x_t,  dW_hh += dz_t^T h_{t-1},  db += dz_t,  dx_t = dz_t W_ih
    """
    T = x.shape[1]
    H = hs.shape[2]
    carry[:, :] = 0.0
    for t in range(T - 1, -1, -1):
        R = active[t]
        if R == 0:
            continue
        for r in range(R):
            h, d, c, z = hs[r, t], dhs[r, t], carry[r], dz[r]
            if relu:
                for j in range(H):
                    z[j] = (d[j] + c[j]) * (h[j] > 0.0)
            else:
                for j in range(H):
                    z[j] = (d[j] + c[j]) * (1.0 - h[j] * h[j])
        with_h = t > 0 or not h0_zero
        r = 0
        while r + 4 <= R:
            z0, z1, z2, z3 = dz[r], dz[r + 1], dz[r + 2], dz[r + 3]
            back4(WhhT, z0, z1, z2, z3, carry[r], carry[r + 1], carry[r + 2], carry[r + 3])
            if need_dx:
                back4(WihT, z0, z1, z2, z3, dx[r, t], dx[r + 1, t], dx[r + 2, t], dx[r + 3, t])
            if with_h:
                outer4(
                    gWhh,
                    z0,
                    z1,
                    z2,
                    z3,
                    prev(hs, h0, r, t),
                    prev(hs, h0, r + 1, t),
                    prev(hs, h0, r + 2, t),
                    prev(hs, h0, r + 3, t),
                )
            outer4(gWih, z0, z1, z2, z3, x[r, t], x[r + 1, t], x[r + 2, t], x[r + 3, t])
            r += 4
        while r < R:
            back1(WhhT, dz[r], carry[r])
            if need_dx:
                back1(WihT, dz[r], dx[r, t])
            if with_h:
                outer1(gWhh, dz[r], prev(hs, h0, r, t))
            outer1(gWih, dz[r], x[r, t])
            r += 1
        for r in range(R):
            for j in range(H):
                gb[j] += dz[r, j]


@njit(**OPTS)
def layer_forward(Wih, Whh, b_ih, b_hh, x, h0, relu, active):
    """A layer over row-major ``x [N, T, I]`` from ``h0 [N, H]``; returns ``hs [N, T, H]``
    (0 where a row is past its end)."""
    N, T, _ = x.shape
    if T > 0 and active[T - 1] == N:
        hs = np.empty((N, T, Whh.shape[0]), dtype=x.dtype)
    else:
        hs = np.zeros((N, T, Whh.shape[0]), dtype=x.dtype)
    block_forward(Wih, Whh, b_ih + b_hh, x, h0, False, relu, hs, active)
    return hs


@njit(**OPTS)
def layer_backward(Wih, Whh, x, hs, h0, relu, dhs, active):
    """Gradients of a layer from row-major ``dhs [N, T, H]``: ``(gWih, gWhh, gb, dx [N, T, I])``
    (dx is 0 where a row is past its end).
    """
    N, T, n_in = x.shape
    H = Whh.shape[0]
    gWih = np.zeros((H, n_in), dtype=x.dtype)
    gWhh = np.zeros((H, H), dtype=x.dtype)
    gb = np.zeros(H, dtype=x.dtype)
    if T > 0 and active[T - 1] == N:
        dx = np.empty((N, T, n_in), dtype=x.dtype)
    else:
        dx = np.zeros((N, T, n_in), dtype=x.dtype)
    dz = np.empty((N, H), dtype=x.dtype)
    carry = np.empty((N, H), dtype=x.dtype)
    block_backward(
        np.ascontiguousarray(Wih.T),
        np.ascontiguousarray(Whh.T),
        x,
        hs,
        h0,
        False,
        relu,
        dhs,
        True,
        dx,
        gWih,
        gWhh,
        gb,
        dz,
        carry,
        active,
    )
    return gWih, gWhh, gb, dx
