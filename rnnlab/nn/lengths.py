"""Variable-length sequences: checking a task's ``Split.lengths``, making padding inert, the
valid-step mask, batches trimmed to their longest sequence and length-bucketed epoch orders.

Semantics are PyTorch's ``pack_padded_sequence(..., enforce_sorted=False)``: sequence ``n`` of
``x [T, N, I]`` holds ``lengths[n]`` valid steps (``1 <= lengths[n] <= T``) followed by padding;
its recurrence stops at step ``lengths[n] - 1``, which holds its final state; outputs at padded
steps are 0 and targets there are ignored. ``lengths = None``: every sequence is full length.
"""

from __future__ import annotations

import numpy as np

from ..errors import PluginError
from ..specs import Dataset, Split

FEATURE = "lengths"  # the Backend.features entry of a backend whose kernels honour lengths


def valid_steps(lengths: np.ndarray, T: int) -> np.ndarray:
    """``[T, N]`` bool: True where step ``t`` of sequence ``n`` is valid (``t < lengths[n]``)."""
    return np.arange(T)[:, None] < lengths[None, :]


def lengths_problem(split: Split, chunk_length: int) -> str | None:
    """What is wrong with ``split.lengths`` (None when nothing is)."""
    lengths = split.lengths
    if lengths is None:
        return None
    if chunk_length:
        return (
            "a stateful dataset (chunk_length > 0) is one continuous stream per split and "
            "cannot carry lengths; set Split.lengths = None"
        )
    if not isinstance(lengths, np.ndarray):
        return f"lengths must be a NumPy integer array, got {type(lengths).__name__}"
    T, N = split.x.shape[:2]
    if lengths.shape != (N,):
        return f"lengths must have shape [N] = ({N},) (one per sequence), got {lengths.shape}"
    if not np.issubdtype(lengths.dtype, np.integer):
        return f"lengths must hold integers (int64), got dtype {lengths.dtype}"
    if N and lengths.min() < 1:
        n = int(np.argmin(lengths))
        return f"lengths must be >= 1, got lengths[{n}] = {lengths[n]}"
    if N and lengths.max() > T:
        n = int(np.argmax(lengths))
        return f"lengths must be <= T = {T} (x's first axis), got lengths[{n}] = {lengths[n]}"
    return None


def check_lengths(dataset: Dataset, task_name: str) -> None:
    """Every split's lengths are valid: one clear PluginError naming the task and the split."""
    for name, split in dataset.splits.items():
        problem = lengths_problem(split, dataset.chunk_length)
        if problem:
            raise PluginError(f"task {task_name!r}, split {name!r}: {problem}")


def has_lengths(dataset: Dataset) -> bool:
    return any(s.lengths is not None for s in dataset.splits.values())


def check_backend_supports(backend, task_name: str | None = None) -> None:
    """Refuse a backend whose kernels do not honour lengths (it would silently run the padding)
    with one clear PluginError naming the backend (and the task whose data have lengths)."""
    if FEATURE not in getattr(backend, "features", frozenset()):
        data = (
            f"task {task_name!r} has sequences of different lengths"
            if task_name
            else "these sequences have different lengths"
        )
        raise PluginError(
            f"backend {getattr(backend, 'name', backend)!r} does not support "
            f"variable-length sequences (its features do not include "
            f"{FEATURE!r}) and {data}; use a backend that does, such as 'numpy'"
        )


def inert_padding(split: Split, target: str) -> Split:
    """``split`` with int64 lengths, zeros in ``x`` at padded steps and (target "every") zeros
    in ``y`` there: what a task writes into the padding then cannot matter to any backend."""
    if split.lengths is None:
        return split
    lengths = split.lengths.astype(np.int64)
    valid = valid_steps(lengths, split.x.shape[0])
    x = np.where(valid[..., None], split.x, 0).astype(split.x.dtype, copy=False)
    y = split.y
    if target == "every":
        keep = valid.reshape(valid.shape + (1,) * (y.ndim - 2))
        y = np.where(keep, y, 0).astype(y.dtype, copy=False)
    return Split(x, y, lengths)


def batch(split: Split, idx: np.ndarray, target: str) -> Split:
    """The sequences ``idx`` of ``split``; with lengths, trimmed to the longest of them, so that
    a batch never pays for steps after its longest sequence."""
    y = split.y[idx] if target == "last" else split.y[:, idx]
    if split.lengths is None:
        return Split(split.x[:, idx], y)
    lengths = split.lengths[idx]
    steps = int(lengths.max())
    return Split(split.x[:steps, idx], y if target == "last" else y[:steps], lengths)


def bucketed_order(rng: np.random.Generator, lengths: np.ndarray, batch_size: int) -> np.ndarray:
    """An epoch order whose consecutive ``batch_size`` slices hold sequences of similar lengths:
    a random permutation sorted by length (stable, so equal lengths stay in random order), cut
    into batches, the full batches then taken in random order and the partial one last. The
    partial batch is the run of the sorted sequences where it saves the most padded steps, so
    no grouping into these batch sizes computes fewer steps. Two draws from ``rng``; the order
    itself is what a checkpoint stores."""
    by_length = rng.permutation(len(lengths))
    by_length = by_length[np.argsort(lengths[by_length], kind="stable")]
    full, rest = divmod(len(lengths), batch_size)
    start = partial_batch_start(lengths[by_length], batch_size) if rest else len(lengths)
    partial = by_length[start : start + rest]
    others = np.concatenate([by_length[:start], by_length[start + rest :]])
    head = others.reshape(full, batch_size)[rng.permutation(full)].reshape(-1)
    return np.concatenate([head, partial])


def partial_batch_start(sorted_lengths: np.ndarray, batch_size: int) -> int:
    """Where the partial batch starts in ``sorted_lengths`` (ascending) so that the batches,
    each cut contiguously and trimmed to its longest sequence, compute the fewest steps."""
    n = len(sorted_lengths)
    rest = n % batch_size

    def steps(start: int) -> int:
        ends = [
            *range(batch_size, start + 1, batch_size),
            start + rest,
            *range(start + rest + batch_size, n + 1, batch_size),
        ]
        sizes = np.diff([0, *ends])
        return int(np.dot(sorted_lengths[np.array(ends) - 1], sizes))

    return min(range(0, n - rest + 1, batch_size), key=steps)
