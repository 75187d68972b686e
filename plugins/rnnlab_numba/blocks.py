"""Products over blocks of rows, shared by every cell: ``o += V W^T`` (the forward projections,
and with W^T given the backward ``D W``), ``G += D^T V`` (weight gradients) and column sums,
over every row of a 2-D array: one step's ``[R, F]`` or every step's ``[T*R, F]`` at once.

Rows go four at a time: each weight row loaded feeds four dot products whose sums stay in
registers (``fastmath`` lets the sums be reassociated and vectorised; only summation order
differs from the NumPy reference).
"""

from numba import njit

OPTS = {"fastmath": {"contract", "reassoc", "nsz"}, "error_model": "numpy", "cache": True}


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
    for m in range(V.shape[0]):
        o = out[m]
        for j in range(b.size):
            o[j] = b[j]
    add_product(W, V, out)


@njit(**OPTS)
def product(W, V, out):
    """out[m] = V[m] W^T for every row m (with ``W`` = W^T of a forward weight: ``D W``)."""
    out[:, :] = 0
    add_product(W, V, out)


@njit(**OPTS)
def affine_steps(W, b, X, out, active):
    """out[t, r] = b + X[t, r] W^T for the rows r < active[t] of ``X [T, R, K]``: one pass over
    every step's rows at once when no row ends early (so that four rows share each weight row
    even when a step has fewer than four)."""
    T, R = X.shape[0], X.shape[1]
    if T > 0 and active[T - 1] == R:
        affine(W, b, X.reshape((T * R, X.shape[2])), out.reshape((T * R, out.shape[2])))
    else:
        for t in range(T):
            affine(W, b, X[t, : active[t]], out[t, : active[t]])


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
def add_rows(g, D):
    """g += the sum of the rows of ``D [M, J]``."""
    for m in range(D.shape[0]):
        d = D[m]
        for j in range(g.size):
            g[j] += d[j]
