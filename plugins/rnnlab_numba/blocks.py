"""Products over blocks of rows for the gated cells (lstm.py, gru.py).

Arrays are row-major as in rnn.py: ``[N, T, F]``, one sequence per row, or the same flattened to
``[N*T, F]`` when every step is handled at once (the input projection, the weight gradients and
dx after the backward recurrence). Rows go four at a time through rnn.py's ``back4``/``outer4``
so that each weight row loaded feeds four dot products; ``affine4`` does the same for
``b + v W^T``.
"""

import numpy as np
from numba import njit

from .mathfn import tanh
from .rnn import OPTS, back1, back4, outer1, outer4, prev


def to_rows(a: np.ndarray) -> np.ndarray:
    """Time-major [T, N, F] -> row-major [N, T, F], contiguous (each sequence one block)."""
    return np.ascontiguousarray(np.swapaxes(a, 0, 1))


@njit(**OPTS)
def sigmoid(a):
    # sigmoid(a) = (1 + tanh(a/2)) / 2, as the NumPy reference computes it
    return 0.5 * (1.0 + tanh(0.5 * a))


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
        affine4(W, b, V[m], V[m + 1], V[m + 2], V[m + 3], out[m], out[m + 1], out[m + 2],
                out[m + 3])
        m += 4
    while m < M:
        affine1(W, b, V[m], out[m])
        m += 1


@njit(**OPTS)
def affine_prev(W, b, hs, h0, t, out):
    """out[r] = b + h[r, t-1] W^T for every sequence r (h[r, -1] = h0[r]); ``out [N, J]``."""
    N = out.shape[0]
    r = 0
    while r + 4 <= N:
        affine4(W, b, prev(hs, h0, r, t), prev(hs, h0, r + 1, t), prev(hs, h0, r + 2, t),
                prev(hs, h0, r + 3, t), out[r], out[r + 1], out[r + 2], out[r + 3])
        r += 4
    while r < N:
        affine1(W, b, prev(hs, h0, r, t), out[r])
        r += 1


@njit(**OPTS)
def back_step(WT, D, t, out):
    """out[r] = D[r, t] W for every sequence r (``W^T`` given as ``WT``; ``out [N, K]``)."""
    N = out.shape[0]
    r = 0
    while r + 4 <= N:
        back4(WT, D[r, t], D[r + 1, t], D[r + 2, t], D[r + 3, t], out[r], out[r + 1],
              out[r + 2], out[r + 3])
        r += 4
    while r < N:
        back1(WT, D[r, t], out[r])
        r += 1


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
def outer_prev(G, D, hs, h0):
    """G += sum over r, t of D[r, t]^T h[r, t-1] (h[r, -1] = h0[r]); ``D [N, T, J]``."""
    N, T, _ = D.shape
    for r in range(N):
        t = 0
        while t + 4 <= T:
            outer4(G, D[r, t], D[r, t + 1], D[r, t + 2], D[r, t + 3], prev(hs, h0, r, t),
                   hs[r, t], hs[r, t + 1], hs[r, t + 2])
            t += 4
        while t < T:
            outer1(G, D[r, t], prev(hs, h0, r, t))
            t += 1


@njit(**OPTS)
def sum_rows(g, D):
    """g += the sum of the rows of ``D [M, J]``."""
    for m in range(D.shape[0]):
        d = D[m]
        for j in range(g.size):
            g[j] += d[j]
