"""Products over blocks of rows for the gated cells (lstm.py, gru.py): ``b + V W^T``, ``D W``,
``G += D^T V`` and column sums, each over every row of a 2-D array: one step's ``[N, F]`` or
every step's ``[T*N, F]`` at once. Rows go four at a time (rnn.py's ``back4``/``outer4``, and
``affine4`` here) so that each weight row loaded feeds four dot products.
"""

from numba import njit

from .mathfn import sigmoid  # noqa: F401  (re-exported for lstm.py, gru.py)
from .rnn import OPTS, back1, back4, outer1, outer4


@njit(**OPTS)
def affine4(W, b, v0, v1, v2, v3, o0, o1, o2, o3):
    """Four rows of o = b + v W^T."""
    for j in range(W.shape[0]):
        w = W[j]
        a0 = a1 = a2 = a3 = b[j] * 0.0
        for k in range(w.size):
            a0 += w[k] * v0[k]
            a1 += w[k] * v1[k]
            a2 += w[k] * v2[k]
            a3 += w[k] * v3[k]
        o0[j], o1[j], o2[j], o3[j] = a0 + b[j], a1 + b[j], a2 + b[j], a3 + b[j]


@njit(**OPTS)
def affine1(W, b, v0, o0):
    for j in range(W.shape[0]):
        w = W[j]
        a0 = b[j] * 0.0
        for k in range(w.size):
            a0 += w[k] * v0[k]
        o0[j] = a0 + b[j]


@njit(**OPTS)
def affine_rows(W, b, V, out):
    """out[m] = b + V[m] W^T for every row m of ``V [M, K]`` (``out [M, J]``)."""
    M = V.shape[0]
    m = 0
    while m + 4 <= M:
        affine4(
            W, b, V[m], V[m + 1], V[m + 2], V[m + 3], out[m], out[m + 1], out[m + 2], out[m + 3]
        )
        m += 4
    while m < M:
        affine1(W, b, V[m], out[m])
        m += 1


@njit(**OPTS)
def back_rows(WT, D, out):
    """out[m] = D[m] W for every row m of ``D [M, J]`` (``out [M, K]``)."""
    M = D.shape[0]
    m = 0
    while m + 4 <= M:
        back4(WT, D[m], D[m + 1], D[m + 2], D[m + 3], out[m], out[m + 1], out[m + 2], out[m + 3])
        m += 4
    while m < M:
        back1(WT, D[m], out[m])
        m += 1


@njit(**OPTS)
def outer_rows(G, D, V):
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
def sum_rows(g, D):
    """g += the sum of the rows of ``D [M, J]``."""
    for m in range(D.shape[0]):
        d = D[m]
        for j in range(g.size):
            g[j] += d[j]
