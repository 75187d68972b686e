"""Products over blocks of rows, shared by every cell: ``o += V W^T`` (the forward projections,
and with W itself the backward ``D W``), ``G += D^T V`` (weight gradients) and column sums,
over every row of a 2-D array (one step's ``[R, F]``) or over the live rows of every step of a
``[T, R, F]`` array at once (``*_steps``: when every row is live, the T R rows are one product,
so that the weight gradients of a whole BPTT pass are one sweep over the weights).

Two forms of ``o += V W^T``. The cells use the outer-product form with the transposed weights,
``o[r, :] += sum_k V[r, k] W^T[k, :]``, tiled by ``madd`` into simd.py's register blocks (8
rows by two 512-bit vectors: their sums stay in registers for the whole k loop; 77 GFLOP/s
float64 on one core at 8 x 128 x 128 where the loops before them reached 30). The weight
gradients are the same kernel with A read down D's columns. The dot-product form
``o[j] = sum_k W[j, k] v[k]`` (``add_product``, ``affine``, ``product``) stays for callers
holding only W over a few rows, where transposing W would cost as much as the product
(forward.py's evaluation). Each output element sums its products in k order (the dot-product
form: as ``fastmath`` reassociates them): only summation order differs from the NumPy
reference, and it never depends on the thread count.
"""

import numpy as np

from . import onehot
from .jitcache import njit
from .simd import VBYTES, K1m, K1x1, K1x2, K1x4, K4m, K4x1, K4x2, K8m, K8x1, K8x2

OPTS = {"fastmath": {"contract", "reassoc", "nsz"}, "error_model": "numpy", "cache": True}
KC = 256  # k per slice in madd: a block's slices of A and B stay in the L1/L2 caches


# -- dot-product form: W [J, K] ---------------------------------------------------------------
@njit(**OPTS)
def gemv4(W, V, out, m):
    """Rows m .. m + 3 of out += V W^T:  out[m, j] += sum_k W[j, k] V[m, k]."""
    v0, v1, v2, v3 = V[m], V[m + 1], V[m + 2], V[m + 3]
    o0, o1, o2, o3 = out[m], out[m + 1], out[m + 2], out[m + 3]
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
        gemv4(W, V, out, m)
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


# -- register-blocked products (simd.py): O += A B over blocks of rows and columns ----------
@njit(**OPTS)
def madd(O, out, lhs, rhs, size):
    """``O[i, :N] += sum_{k < K} A[i, k] B[k, :N]`` for i < M, ``size = (M, N, K)``, in
    register blocks (simd.py) of 8, 4 or 1 rows by two vectors, one vector or the last columns
    (a masked vector). ``out = (o, o_rs)``, ``lhs = (a, a_rs, a_ks)``, ``rhs = (b, b_rs)``:
    addresses (bytes) and strides (elements) as simd.block_kernel takes them; ``O`` gives the
    element type. The k loop runs in slices of KC so that a block's share of A and B stays in
    cache while the blocks sweep it (each element still sums its products in k order)."""
    (o, o_rs), (a, a_rs, a_ks), (b, b_rs) = out, lhs, rhs
    M, N, K = size
    isz = O.itemsize
    lanes = VBYTES // isz
    for k0 in range(0, K, KC):
        k = min(KC, K - k0)
        ak, bk = a + k0 * a_ks * isz, b + k0 * b_rs * isz
        m = 0
        while m < M:
            rows = 8 if m + 8 <= M else (4 if m + 4 <= M else 1)
            oi, ai = o + m * o_rs * isz, ak + m * a_rs * isz
            n = 0
            while n < N:
                on, bn = oi + n * isz, bk + n * isz
                if rows == 1 and n + 4 * lanes <= N:
                    K1x4((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, O)
                    n += 4 * lanes
                elif n + 2 * lanes <= N:
                    if rows == 8:
                        K8x2((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, O)
                    elif rows == 4:
                        K4x2((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, O)
                    else:
                        K1x2((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, O)
                    n += 2 * lanes
                elif n + lanes <= N:
                    if rows == 8:
                        K8x1((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, O)
                    elif rows == 4:
                        K4x1((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, O)
                    else:
                        K1x1((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, O)
                    n += lanes
                else:  # the last N - n < lanes columns, one masked vector
                    if rows == 8:
                        K8m((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, N - n, O)
                    elif rows == 4:
                        K4m((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, N - n, O)
                    else:
                        K1m((on, o_rs), (ai, a_rs, a_ks), (bn, b_rs), k, N - n, O)
                    n = N
            m += rows


@njit(**OPTS)
def unit_rows(X):
    """Row stride of a 2-D array in elements; fails unless its columns are contiguous (the
    kernels read rows as vectors)."""
    if X.shape[1] > 1 and X.strides[1] != X.itemsize:
        raise ValueError("blocks: rows must be contiguous")
    return X.strides[0] // X.itemsize


@njit(**OPTS)
def add_rows_product(WT, V, out):
    """out[m] += V[m] W^T for every row m of ``V [M, K]``, given ``WT [K, J]``."""
    M, (K, J) = V.shape[0], WT.shape
    if M == 0 or J == 0:
        return
    o_rs, v_rs, w_rs = unit_rows(out), V.strides[0] // V.itemsize, unit_rows(WT)
    v_ks = V.strides[1] // V.itemsize
    lhs = (V.ctypes.data, v_rs, v_ks)
    madd(out, (out.ctypes.data, o_rs), lhs, (WT.ctypes.data, w_rs), (M, J, K))


@njit(**OPTS)
def add_outer_rows(G, D, V):
    """G += D^T V over the rows of ``D [M, J]`` and ``V [M, K]`` (``G [J, K]``): G's rows are
    the blocks' rows, the M rows the k loop (D read down its columns)."""
    M, (J, K) = D.shape[0], G.shape
    if M == 0 or J == 0 or K == 0:
        return
    g_rs, v_rs = unit_rows(G), unit_rows(V)
    d_rs, d_ks = D.strides[1] // D.itemsize, D.strides[0] // D.itemsize
    madd(G, (G.ctypes.data, g_rs), (D.ctypes.data, d_rs, d_ks), (V.ctypes.data, v_rs), (J, K, M))


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
    add_rows_product(WT, V, out)


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
def uniform(X, active):
    """Whether the live rows of every step of ``X [T, R, F]`` are all its rows, equally
    spaced (then they are one ``[T R, F]`` block for the kernels)."""
    for t in range(X.shape[0]):
        if active[t] != X.shape[1]:
            return False
    return X.shape[0] * X.shape[1] == 0 or X.strides[0] == X.shape[1] * X.strides[1]


@njit(**OPTS)
def add_product_steps(WT, X, out, active):
    """out[t, r] += X[t, r] W^T for the live rows of ``X [T, R, K]``, given ``WT [K, J]``: one
    product over every step's rows when they are all live, else step by step."""
    T, R = X.shape[0], X.shape[1]
    if uniform(X, active) and uniform(out, active) and T * R > 0:
        K, J = WT.shape
        isz = X.itemsize
        x_rs, x_ks, o_rs = X.strides[1] // isz, X.strides[2] // isz, out.strides[1] // isz
        if J > 1 and out.strides[2] != isz:
            raise ValueError("blocks: rows must be contiguous")
        lhs = (X.ctypes.data, x_rs, x_ks)
        madd(out, (out.ctypes.data, o_rs), lhs, (WT.ctypes.data, unit_rows(WT)), (T * R, J, K))
        return
    for t in range(T):
        add_rows_product(WT, X[t, : active[t]], out[t, : active[t]])


@njit(**OPTS)
def affine_steps(W, b, X, out, active):
    """out[t, r] = b + X[t, r] W^T for the rows r < active[t] of ``X [T, R, K]`` (``W [J, K]``):
    a gather for one-hot inputs, else the bias then one product over every step's live rows."""
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
def add_outer(G, D, V):
    """G += D^T V over every row of ``D [M, J]`` and ``V [M, K]`` (``G [J, K]``)."""
    add_outer_rows(G, D, V)


@njit(**OPTS)
def outer_steps(G, D, V, active):
    """G += D[t, r]^T V[t, r] summed over the live rows of every step: one product with the
    T R rows as its k loop when they are all live, else step by step."""
    T, R = D.shape[0], D.shape[1]
    if uniform(D, active) and uniform(V, active) and T * R > 0:
        J, K = G.shape
        isz = D.itemsize
        d_rs, d_ks, v_rs = D.strides[2] // isz, D.strides[1] // isz, V.strides[1] // isz
        if K > 1 and V.strides[2] != isz:
            raise ValueError("blocks: rows must be contiguous")
        lhs = (D.ctypes.data, d_rs, d_ks)
        madd(G, (G.ctypes.data, unit_rows(G)), lhs, (V.ctypes.data, v_rs), (J, K, T * R))
        return
    for t in range(T):
        add_outer_rows(G, D[t, : active[t]], V[t, : active[t]])


@njit(**OPTS)
def add_outer_steps(G, D, V, active):
    """G += D[t, r]^T V[t, r] summed over the live rows of every step (``D [T, R, J]``,
    ``V [T, R, K]``, ``G [J, K]``). With fewer columns than rows (a first layer's inputs; the
    gated cells' W_hh, [4H, H]) the sums run into G^T, so that the blocks' vectors lie along
    the long side."""
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
