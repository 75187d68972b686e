"""What a task's data must be for rnnlab to train on it: the declared loss and target, and
every split's arrays in the shapes and dtypes those imply (see :mod:`rnnlab.specs`). Checked at
the start of every run (a task's bug is then one message naming its plugin, not a traceback
from deep inside training) and by :func:`rnnlab.testing.check_dataset`."""

from __future__ import annotations

import json

import numpy as np

from ..nn.lengths import lengths_problem, valid_steps
from ..specs import LOSSES, TARGETS, Dataset

SPLITS = ("train", "val", "test")


def dataset_problem(d: Dataset) -> str | None:
    """What is wrong with the dataset ``d``, in words; None when nothing is."""
    if d.loss not in LOSSES:
        return f"loss {d.loss!r} is not one of {LOSSES}"
    if d.target not in TARGETS:
        return f"target {d.target!r} is not one of {TARGETS}"
    for n in ("input_size", "output_size"):
        value = getattr(d, n)
        if not (isinstance(value, int | np.integer) and value > 0):
            return f"{n} must be a positive integer, got {value!r}"
    missing = [s for s in SPLITS if s not in d.splits or len(d.splits[s]) == 0]
    if missing:
        return f"no data for split(s) {missing}"
    for name, s in d.splits.items():
        problem = split_problem(d, s)
        if problem is not None:
            return f"split {name!r}: {problem}"
    if d.chunk_length and not (d.target == "every" and all(len(s) == 1 for s in d.splits.values())):
        return (
            "a stateful dataset (chunk_length > 0) must have target 'every' and one "
            "stream [L, 1, input_size] per split"
        )
    try:
        json.dumps(d.saved)
    except (TypeError, ValueError) as exc:
        return f"Dataset.saved must be JSON-ready: {exc}"
    return None


def split_problem(d: Dataset, s) -> str | None:
    """What is wrong with one split ``s`` of ``d``; None when nothing is."""
    if not (s.x.ndim == 3 and s.x.shape[2] == d.input_size):
        return f"x must be [T, N, input_size={d.input_size}], got shape {s.x.shape}"
    if not (np.issubdtype(s.x.dtype, np.number) or s.x.dtype == np.bool_):
        return f"x must be numeric (cast to the model's dtype), got {s.x.dtype}"
    T, N = s.x.shape[:2]
    problem = lengths_problem(s, d.chunk_length)
    if problem is not None:
        return problem
    lead = (N,) if d.target == "last" else (T, N)
    if d.loss == "mse":
        want = (*lead, d.output_size)
        if s.y.shape != want:
            return f"y must have shape {want} for mse/{d.target}, got {s.y.shape}"
        if not np.issubdtype(s.y.dtype, np.floating):
            return f"y has dtype {s.y.dtype}; mse needs floating-point targets"
    else:
        if s.y.shape != lead:
            return f"y must have shape {lead} (class indices) for xent/{d.target}, got {s.y.shape}"
        if not np.issubdtype(s.y.dtype, np.integer):
            return f"y must hold integer class indices for xent, got dtype {s.y.dtype}"
        counted = s.y  # the targets that count: not those at padded steps
        if s.lengths is not None and d.target == "every":
            counted = s.y[valid_steps(s.lengths, T)]
        if counted.size and not (counted.min() >= 0 and counted.max() < d.output_size):
            return (
                f"class indices must lie in [0, {d.output_size}), got "
                f"[{counted.min()}, {counted.max()}]"
            )
    if not np.all(np.isfinite(s.x)):
        return "x holds NaN or inf"
    if not np.all(np.isfinite(s.y)):
        return "y holds NaN or inf"
    return None
