"""Which examples go to train, val and test: stratified by class and seeded, or as the file
says (a split field), with validation examples drawn from train when the file names none."""

from __future__ import annotations

import numpy as np

from rnnlab.plugin import data_error

from .read import Example

SPLITS = ("train", "val", "test")


def stratified(
    groups: np.ndarray, fractions: tuple[float, float], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Indices per split: within each group (a class; one group for regression), a seeded
    shuffle cut into round(n * val_fraction) val, round(n * test_fraction) test and the rest
    train (at least one). Indices come back in file order."""
    train_f, val_f = fractions
    test_f = 1.0 - train_f - val_f
    parts = {name: [] for name in SPLITS}
    for g in np.unique(groups):
        idx = rng.permutation(np.flatnonzero(groups == g))
        n_val = int(round(len(idx) * val_f))
        n_test = int(round(len(idx) * test_f))
        while n_val + n_test >= len(idx) and n_val + n_test > 0:  # keep one for train
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    return {name: np.sort(np.concatenate(p)).astype(np.int64) for name, p in parts.items()}


def assign(
    path,
    examples: list[Example],
    groups: np.ndarray,
    fractions: tuple[float, float],
    given: bool,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The split of every example; every split must end up with at least one."""
    if not given:
        out = stratified(groups, fractions, rng)
    else:
        names = np.array([e.split for e in examples])
        out = {name: np.flatnonzero(names == name) for name in SPLITS}
        if len(out["val"]) == 0:  # carve val out of train, stratified like the rest
            train = out["train"]
            share = fractions[1] / (fractions[0] + fractions[1])
            inner = stratified(groups[train], (1.0 - share, share), rng)
            out["val"], out["train"] = train[inner["val"]], train[inner["train"]]
    for name in SPLITS:
        if len(out[name]) == 0:
            how = (
                "no example names it in the split field"
                if given
                else f"{len(examples)} examples are too few for the fractions given"
            )
            raise data_error(path, f"the {name} split is empty: {how}")
    return out
