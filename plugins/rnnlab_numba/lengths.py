"""Variable-length batches for the kernels: rows sorted longest first, and per step how many
rows are still live.

With the rows of a batch sorted by length, longest first, the rows that take part in step t are
a prefix ``[:active[t]]`` (``active`` never grows with t): the kernels then run each step's
products over that prefix only, exactly like PyTorch's packed sequences (whose ``batch_sizes``
are ``active``). Padded steps are never read and never written, so whatever a task puts in the
padding cannot reach a result.
"""

from __future__ import annotations

import numpy as np


def full(T: int, N: int) -> np.ndarray:
    """``active`` for a batch without lengths: every row live at every step."""
    return np.full(T, N, dtype=np.int64)


def check(lengths, T: int, N: int) -> np.ndarray:
    """``lengths`` as int64 ``[N]``, each in 1..T (the kernels index with them unchecked)."""
    lengths = np.asarray(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(
            f"lengths must be integers of shape ({N},), got {lengths.dtype} {lengths.shape}"
        )
    if N and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths must be in 1..{T}, got {lengths.min()}..{lengths.max()}")
    return lengths.astype(np.int64, copy=False)


def pack(lengths: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(perm, inverse, active)``: ``perm`` orders the rows longest first (stable, so equal
    lengths keep their order), ``inverse`` undoes it, ``active[t]`` counts the rows longer
    than t."""
    perm = np.argsort(-lengths, kind="stable")
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    active = np.bincount(np.minimum(lengths, T), minlength=T + 1)[::-1].cumsum()[::-1][1:]
    return perm, inverse, np.ascontiguousarray(active, dtype=np.int64)


def batch_perm(order: np.ndarray, lengths: np.ndarray, batch_size: int) -> np.ndarray:
    """The permutation (within each consecutive ``batch_size`` slice) that sorts ``order``'s
    batches longest first, stably: ``order[batch_perm(...)]`` holds the same batches, each
    ready for the kernels' prefix of live rows."""
    batch = np.arange(order.size) // batch_size
    return np.lexsort((-lengths[order], batch))
