"""Products over blocks of rows, shared by every cell: ``o += V W^T`` (the forward projections,
and with W^T given the backward ``D W``), ``G += D^T V`` (weight gradients) and column sums,
over every row of a 2-D array (one step's ``[R, F]``) or over the live rows of every step of a
``[T, R, F]`` array at once (``*_steps``: rows grouped four at a time across steps, so that the
weight gradients of a whole BPTT pass are one sweep over the weights).

Two forms of ``o += V W^T``. The cells use the outer-product (axpy) form with the transposed
weights, ``o[r, :] += sum_k V[r, k] W^T[k, :]``: it vectorises along the outputs, four rows
share each row of W^T and four k are summed per pass over the outputs, so no horizontal sums
(measured here at H=32: 30-45 GFLOP/s float64 against 22-27 for the dot-product form, about
2x in float32). The dot-product form ``o[j] = sum_k W[j, k] v[k]`` (``add_product``,
``affine``, ``product``) stays for callers holding only W over a few rows, where transposing
W would cost as much as the product (forward.py's evaluation). ``fastmath`` lets sums be
reassociated and fused: only summation order differs from the NumPy reference.
"""

import numpy as np
from numba import njit

from . import onehot

OPTS = {"fastmath": {"contract", "reassoc", "nsz"}, "error_model": "numpy", "cache": True}


# -- dot-product form: W [J, K] ---------------------------------------------------------------
@njit(**OPTS)
def gemv4(W, v0, v1, v2, v3, o0, o1, o2, o3):
    """Four rows of o += v W^T:  o[j] += sum_k W[j, k] v[k]."""
    for j in range(W.shape[0]):
        w = W[j]
        a0, a1, a2, a3 = o0[j], o1[j], o2[j], o3[j]
        for k in range(w.size):
            a0 += w[k] * v0[k]
            a1 += w[k] * v1[k]
            a2 += w[k] * v2[k]
            a3 += w[k] * v3[k]
        o0[j], o1[j], o2[j], o3[j] = a0, a1, a2, a3


@njit(**OPTS)
def gemv1(W, v0, o0):
    """One row of o += v W^T (the rows left over by gemv4)."""
    for j in range(W.shape[0]):
        w = W[j]
        a0 = o0[j]
        for k in range(w.size):
            a0 += w[k] * v0[k]
        o0[j] = a0


@njit(**OPTS)
def add_product(W, V, out):
    """out[m] += V[m] W^T for every row m of ``V [M, K]`` (``W [J, K]``, ``out [M, J]``)."""
    M = V.shape[0]
    m = 0
    while m + 4 <= M:
        gemv4(W, V[m], V[m + 1], V[m + 2], V[m + 3], out[m], out[m + 1], out[m + 2], out[m + 3])
        m += 4
    while m < M:
        gemv1(W, V[m], out[m])
        m += 1


@njit(**OPTS)
def affine(W, b, V, out):
    """out[m] = b + V[m] W^T for every row m of ``V [M, K]``."""
    fill_rows(out, b)
    add_product(W, V, out)


@njit(**OPTS)
def product(W, V, out):
    """out[m] = V[m] W^T for every row m (with ``W`` = W^T of a forward weight: ``D W``)."""
    out[:, :] = 0
    add_product(W, V, out)


# -- outer-product (axpy) form: W^T [K, J] ----------------------------------------------------
@njit(**OPTS)
def axpy4(WT, v0, v1, v2, v3, o0, o1, o2, o3):
    """Four rows of o += v W^T, given W^T:  o[:] += sum_k v[k] WT[k, :], four k per pass."""
    K, J = WT.shape
    k = 0
    while k + 4 <= K:
        w0, w1, w2, w3 = WT[k], WT[k + 1], WT[k + 2], WT[k + 3]
        a0, a1, a2, a3 = v0[k], v0[k + 1], v0[k + 2], v0[k + 3]
        b0, b1, b2, b3 = v1[k], v1[k + 1], v1[k + 2], v1[k + 3]
        c0, c1, c2, c3 = v2[k], v2[k + 1], v2[k + 2], v2[k + 3]
        d0, d1, d2, d3 = v3[k], v3[k + 1], v3[k + 2], v3[k + 3]
        for j in range(J):
            x0, x1, x2, x3 = w0[j], w1[j], w2[j], w3[j]
            o0[j] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
            o1[j] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
            o2[j] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
            o3[j] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3
        k += 4
    while k < K:
        w0 = WT[k]
        a0, b0, c0, d0 = v0[k], v1[k], v2[k], v3[k]
        for j in range(J):
            x0 = w0[j]
            o0[j] += a0 * x0
            o1[j] += b0 * x0
            o2[j] += c0 * x0
            o3[j] += d0 * x0
        k += 1


@njit(**OPTS)
def axpy1(WT, v0, o0):
    """One row of o += v W^T, given W^T (the rows left over by axpy4)."""
    K, J = WT.shape
    k = 0
    while k + 4 <= K:
        w0, w1, w2, w3 = WT[k], WT[k + 1], WT[k + 2], WT[k + 3]
        a0, a1, a2, a3 = v0[k], v0[k + 1], v0[k + 2], v0[k + 3]
        for j in range(J):
            o0[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j]
        k += 4
    while k < K:
        w0, a0 = WT[k], v0[k]
        for j in range(J):
            o0[j] += a0 * w0[j]
        k += 1


@njit(**OPTS)
def transposed(W):
    """A contiguous copy of W^T, in bands of eight rows of W (their cache lines are reused
    along a band; writes stay contiguous): 4x faster than element order at 128 x 128."""
    J, K = W.shape
    WT = np.empty((K, J), W.dtype)
    for j0 in range(0, J, 8):
        j1 = min(j0 + 8, J)
        for k in range(K):
            for j in range(j0, j1):
                WT[k, j] = W[j, k]
    return WT


@njit(**OPTS)
def fill_rows(out, b):
    """out[m] = b for every row m."""
    for m in range(out.shape[0]):
        o = out[m]
        for j in range(b.size):
            o[j] = b[j]


@njit(**OPTS)
def add_product_t(WT, V, out):
    """out[m] += V[m] W^T for every row m of ``V [M, K]``, given ``WT [K, J]``."""
    M = V.shape[0]
    m = 0
    while m + 4 <= M:
        axpy4(WT, V[m], V[m + 1], V[m + 2], V[m + 3], out[m], out[m + 1], out[m + 2], out[m + 3])
        m += 4
    while m < M:
        axpy1(WT, V[m], out[m])
        m += 1


@njit(**OPTS)
def affine_t(WT, b, V, out):
    """out[m] = b + V[m] W^T for every row m of ``V [M, K]``, given ``WT [K, J]``."""
    fill_rows(out, b)
    add_product_t(WT, V, out)


@njit(**OPTS)
def product_t(WT, V, out):
    """out[m] = V[m] W^T for every row m, given ``WT [K, J]`` (``D W``: pass W itself)."""
    out[:, :] = 0
    add_product_t(WT, V, out)


# -- every live row of every step: ``[T, R, F]`` arrays, step t's rows ``[:active[t]]`` --------
@njit(**OPTS)
def next_live(t, r, active, T):
    """The live row after (t, r) in step-major order, or (T, 0) past the last."""
    r += 1
    while t < T and r >= active[t]:
        t += 1
        r = 0
    return t, r


@njit(**OPTS)
def live_count(active, T):
    n = 0
    for t in range(T):
        n += active[t]
    return n


@njit(**OPTS)
def add_product_steps(WT, X, out, active):
    """out[t, r] += X[t, r] W^T for the live rows of ``X [T, R, K]``, given ``WT [K, J]``;
    four rows at a time across steps."""
    T = X.shape[0]
    n = live_count(active, T)
    t0, r0 = next_live(0, -1, active, T)
    m = 0
    while m + 4 <= n:
        t1, r1 = next_live(t0, r0, active, T)
        t2, r2 = next_live(t1, r1, active, T)
        t3, r3 = next_live(t2, r2, active, T)
        axpy4(
            WT, X[t0, r0], X[t1, r1], X[t2, r2], X[t3, r3],
            out[t0, r0], out[t1, r1], out[t2, r2], out[t3, r3],
        )  # fmt: skip
        t0, r0 = next_live(t3, r3, active, T)
        m += 4
    while m < n:
        axpy1(WT, X[t0, r0], out[t0, r0])
        t0, r0 = next_live(t0, r0, active, T)
        m += 1


@njit(**OPTS)
def affine_steps(W, b, X, out, active):
    """out[t, r] = b + X[t, r] W^T for the rows r < active[t] of ``X [T, R, K]`` (``W [J, K]``):
    one pass over every step's live rows, four at a time across steps."""
    if W.shape[1] == 1:  # one input (a first layer's): one pass, out = b + x w^T
        for t in range(X.shape[0]):
            for r in range(active[t]):
                o, a = out[t, r], X[t, r, 0]
                for j in range(b.size):
                    o[j] = b[j] + a * W[j, 0]
        return
    if onehot.affine(W, b, X, out, active):  # one-hot inputs (a char model's): a gather
        return
    for t in range(X.shape[0]):
        fill_rows(out[t, : active[t]], b)
    add_product_steps(transposed(W), X, out, active)


@njit(**OPTS)
def outer4(G, d0, d1, d2, d3, v0, v1, v2, v3):
    """G += d^T v summed over four rows: G[j] += d0[j] v0 + d1[j] v1 + d2[j] v2 + d3[j] v3."""
    for j in range(G.shape[0]):
        g = G[j]
        e0, e1, e2, e3 = d0[j], d1[j], d2[j], d3[j]
        for k in range(g.size):
            g[k] += e0 * v0[k] + e1 * v1[k] + e2 * v2[k] + e3 * v3[k]


@njit(**OPTS)
def outer8(G, D, V, t, r, active):
    """G += d^T v summed over the eight live rows from (t, r) on (step-major order); returns
    the live row after them. Two rows of G per pass share the loads of v (25% faster than one
    at 128 x 128)."""
    T = D.shape[0]
    t1, r1 = next_live(t, r, active, T)
    t2, r2 = next_live(t1, r1, active, T)
    t3, r3 = next_live(t2, r2, active, T)
    t4, r4 = next_live(t3, r3, active, T)
    t5, r5 = next_live(t4, r4, active, T)
    t6, r6 = next_live(t5, r5, active, T)
    t7, r7 = next_live(t6, r6, active, T)
    d0, d1, d2, d3 = D[t, r], D[t1, r1], D[t2, r2], D[t3, r3]
    d4, d5, d6, d7 = D[t4, r4], D[t5, r5], D[t6, r6], D[t7, r7]
    v0, v1, v2, v3 = V[t, r], V[t1, r1], V[t2, r2], V[t3, r3]
    v4, v5, v6, v7 = V[t4, r4], V[t5, r5], V[t6, r6], V[t7, r7]
    J = G.shape[0]
    j = 0
    while j + 2 <= J:
        g, h = G[j], G[j + 1]
        e0, e1, e2, e3, e4, e5, e6, e7 = d0[j], d1[j], d2[j], d3[j], d4[j], d5[j], d6[j], d7[j]
        i = j + 1
        f0, f1, f2, f3, f4, f5, f6, f7 = d0[i], d1[i], d2[i], d3[i], d4[i], d5[i], d6[i], d7[i]
        for k in range(g.size):
            a0, a1, a2, a3 = v0[k], v1[k], v2[k], v3[k]
            a4, a5, a6, a7 = v4[k], v5[k], v6[k], v7[k]
            g[k] += (e0 * a0 + e1 * a1 + e2 * a2 + e3 * a3) + (
                e4 * a4 + e5 * a5 + e6 * a6 + e7 * a7
            )
            h[k] += (f0 * a0 + f1 * a1 + f2 * a2 + f3 * a3) + (
                f4 * a4 + f5 * a5 + f6 * a6 + f7 * a7
            )
        j += 2
    while j < J:  # an odd row left
        g = G[j]
        e0, e1, e2, e3, e4, e5, e6, e7 = d0[j], d1[j], d2[j], d3[j], d4[j], d5[j], d6[j], d7[j]
        for k in range(g.size):
            g[k] += (e0 * v0[k] + e1 * v1[k] + e2 * v2[k] + e3 * v3[k]) + (
                e4 * v4[k] + e5 * v5[k] + e6 * v6[k] + e7 * v7[k]
            )
        j += 1
    return next_live(t7, r7, active, T)


@njit(**OPTS)
def outer1(G, d0, v0):
    for j in range(G.shape[0]):
        g = G[j]
        e0 = d0[j]
        for k in range(g.size):
            g[k] += e0 * v0[k]


@njit(**OPTS)
def add_outer(G, D, V):
    """G += D^T V over every row of ``D [M, J]`` and ``V [M, K]`` (``G [J, K]``)."""
    M = D.shape[0]
    m = 0
    while m + 4 <= M:
        outer4(G, D[m], D[m + 1], D[m + 2], D[m + 3], V[m], V[m + 1], V[m + 2], V[m + 3])
        m += 4
    while m < M:
        outer1(G, D[m], V[m])
        m += 1


@njit(**OPTS)
def outer_steps(G, D, V, active):
    """G += D[t, r]^T V[t, r] summed over the live rows of every step, eight rows at a time."""
    T = D.shape[0]
    n = live_count(active, T)
    t0, r0 = next_live(0, -1, active, T)
    m = 0
    while m + 8 <= n:
        t0, r0 = outer8(G, D, V, t0, r0, active)
        m += 8
    while m + 4 <= n:
        t1, r1 = next_live(t0, r0, active, T)
        t2, r2 = next_live(t1, r1, active, T)
        t3, r3 = next_live(t2, r2, active, T)
        outer4(
            G, D[t0, r0], D[t1, r1], D[t2, r2], D[t3, r3],
            V[t0, r0], V[t1, r1], V[t2, r2], V[t3, r3],
        )  # fmt: skip
        t0, r0 = next_live(t3, r3, active, T)
        m += 4
    while m < n:
        outer1(G, D[t0, r0], V[t0, r0])
        t0, r0 = next_live(t0, r0, active, T)
        m += 1


@njit(**OPTS)
def add_outer_steps(G, D, V, active):
    """G += D[t, r]^T V[t, r] summed over the live rows of every step (``D [T, R, J]``,
    ``V [T, R, K]``, ``G [J, K]``), four rows at a time across steps: one sweep over G per
    four rows. With fewer columns than rows (a first layer's inputs; the gated cells' W_hh,
    [4H, H]) the sums run along J instead, into G^T, so that the inner loops are the long
    ones (lstm at H=32: 1.6x)."""
    J, K = G.shape
    if onehot.add_outer(G, D, V, active):  # one-hot inputs (a char model's): a scatter
        return
    if K < J:
        GT = np.zeros((K, J), G.dtype)
        outer_steps(GT, V, D, active)
        for j in range(J):
            for k in range(K):
                G[j, k] += GT[k, j]
    else:
        outer_steps(G, D, V, active)


@njit(**OPTS)
def add_rows(g, D):
    """g += the sum of the rows of ``D [M, J]``."""
    for m in range(D.shape[0]):
        d = D[m]
        for j in range(g.size):
            g[j] += d[j]


@njit(**OPTS)
def add_rows_steps(g, D, active):
    """g += the sum of the live rows of every step of ``D [T, R, J]``."""
    for t in range(D.shape[0]):
        add_rows(g, D[t, : active[t]])
