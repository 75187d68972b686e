"""One-hot inputs (a char model's characters): the input projection as a column gather and its
weight gradient as a column scatter, chosen by looking at the data.

Why: a char model's first layer reads a one-hot vector per step, so ``x W^T`` over a V-wide
input is V multiply-adds per output of which one is not a product with zero. At min-char-rnn's
settings (V about 100, H = 100, one row, 25 steps) the dense products were a sixth of a
chunk's time; the gather and the scatter are a few hundred loads.

Fail safe: nothing declares the inputs one-hot; ``onehot_rows`` checks every live row (exactly
one entry equal to 1, every other entry equal to 0, NaN failing both) in one vectorised pass
before either fast path runs, and any other input takes the dense products. What it costs is a
read of the inputs, stopped at the first row that is not one-hot (a layer above the first, whose
inputs are hidden states, fails on its first row).

Agreement: the gather gives ``b + W[:, c]``, which is what the dense product gives for a
one-hot row with finite weights (every other term is an exact zero), bit for bit. The scatter
adds each step's row of D into column c in step order, a different summation order from the
dense product's (within the tolerances of the NumPy reference, like any reassociation here).
"""

import numpy as np

from .jitcache import njit

OPTS = {"fastmath": {"contract", "reassoc", "nsz"}, "error_model": "numpy", "cache": True}


@njit(**OPTS)
def hot_index(x):
    """The position of the 1 in the vector ``x`` when it is one-hot, else -1."""
    ones, other, at = 0, 0, 0
    for k in range(x.size):  # branch-free, so that it vectorises
        v = x[k]
        one = v == 1
        ones += one
        other += (v != 0) & (not one)
        at += k * one
    return at if ones == 1 and other == 0 else -1


@njit(**OPTS)
def onehot_rows(X, active, index):
    """Whether every live row of ``X [T, R, K]`` (rows ``[:active[t]]`` of step t) is one-hot;
    if so ``index[t, r]`` is the position of its 1. Stops at the first row that is not."""
    if X.shape[2] < 2:  # one input: nothing to gather
        return False
    for t in range(X.shape[0]):
        for r in range(active[t]):
            c = hot_index(X[t, r])
            if c < 0:
                return False
            index[t, r] = c
    return True


@njit(**OPTS)
def gather_affine(W, b, index, out, active):
    """out[t, r] = b + W[:, index[t, r]] for the live rows (``W [J, K]``): x W^T + b for the
    one-hot row x whose 1 is at ``index[t, r]``."""
    for t in range(out.shape[0]):
        for r in range(active[t]):
            o, c = out[t, r], index[t, r]
            for j in range(b.size):
                o[j] = b[j] + W[j, c]


@njit(**OPTS)
def scatter_outer(G, D, index, active):
    """G[:, index[t, r]] += D[t, r] over the live rows in step order (``G [J, K]``,
    ``D [T, R, >= J]``): G += D^T X for the one-hot rows X."""
    for t in range(D.shape[0]):
        for r in range(active[t]):
            d, c = D[t, r], index[t, r]
            for j in range(G.shape[0]):
                G[j, c] += d[j]


@njit(**OPTS)
def affine(W, b, X, out, active):
    """out = b + X W^T on the live rows by a gather when every one of them is one-hot; returns
    whether it did (else nothing was written)."""
    index = np.empty(X.shape[:2], np.int64)
    if not onehot_rows(X, active, index):
        return False
    gather_affine(W, b, index, out, active)
    return True


@njit(**OPTS)
def add_outer(G, D, X, active):
    """G += D^T X over the live rows by a scatter when every one of them is one-hot; returns
    whether it did (else G is untouched)."""
    index = np.empty(X.shape[:2], np.int64)
    if not onehot_rows(X, active, index):
        return False
    scatter_outer(G, D, index, active)
    return True


@njit(**OPTS)
def hot_columns(x, rows, t0, T, cols, seen):
    """The characters of a batch: when every row ``x[t0 + t, rows[r]]`` (t < T) is one-hot, the
    distinct positions of their 1s into ``cols`` (``seen``: scratch of x's width), returning
    how many; else -1. The rows are those onehot_rows sees in the batch's chunks (no lengths),
    so on success the first layer's W_ih gradient came from ``scatter_outer`` and is exactly
    +0.0 in every other column (step.clip_update_cols)."""
    if x.shape[2] < 2:  # as onehot_rows: no scatter
        return -1
    seen[:] = False
    n = 0
    for t in range(T):
        for r in range(rows.size):
            c = hot_index(x[t0 + t, rows[r]])
            if c < 0:
                return -1
            if not seen[c]:
                seen[c] = True
                cols[n] = c
                n += 1
    return n
