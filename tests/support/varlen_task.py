"""A task plugin file for the variable-length tests: random sequences of different lengths.

``target = "last"``: predict the mean of a sequence's valid inputs (mse). ``target = "every"``:
at every step, say whether the running sum so far is positive (xent, 2 classes). ``pad`` is
written into the padding of ``x`` (and of every-step targets); ``defect`` breaks the lengths in
one of the ways the core must refuse. Two backends come with it: ``nolengths`` (the NumPy
reference without the "lengths" feature) and ``twin`` (the NumPy reference under another name).
"""

import numpy as np

from rnnlab.plugin import BackendSpec, Dataset, Option, Split, Task, TaskSpec, hookimpl

DEFECTS = ("", "shape", "float", "zero", "negative", "long", "list", "stateful")
OPTIONS = (
    Option("target", str, "last", choices=("last", "every")),
    Option("steps", int, 9, "padded length T", gt=1),
    Option("sequences", int, 120, ge=10),
    Option("pad", float, 0.0, "value written into the padding"),
    Option("defect", str, "", choices=DEFECTS),
    Option("skew", bool, False, "most sequences short, a few long"),
)


def make_split(rng, n, o, defect=""):
    T = o["steps"]
    if o["skew"]:
        lengths = np.where(rng.random(n) < 0.8, rng.integers(1, 4, n), rng.integers(1, T + 1, n))
    else:
        lengths = rng.integers(1, T + 1, size=n)
    lengths = lengths.astype(np.int64)
    lengths[0] = T
    x = rng.uniform(-1.0, 1.0, size=(T, n, 1))
    valid = np.arange(T)[:, None] < lengths[None, :]
    x = np.where(valid[..., None], x, 0.0)
    if o["target"] == "last":
        y = (x[..., 0].sum(axis=0) / lengths)[:, None]
    else:
        y = (np.cumsum(x[..., 0], axis=0) > 0).astype(np.int64)
        y[~valid] = 1 if o["pad"] else 0
    x[~valid] = o["pad"]
    broken = {
        "shape": lambda: lengths[:-1],
        "float": lambda: lengths.astype(float),
        "zero": lambda: np.where(np.arange(n) == 2, 0, lengths),
        "negative": lambda: np.where(np.arange(n) == 2, -1, lengths),
        "long": lambda: np.where(np.arange(n) == 2, T + 1, lengths),
        "list": lambda: lengths.tolist(),
    }
    return Split(x, y, broken[defect]() if defect in broken else lengths)


class VarlenTask(Task):
    def build(self, rng):
        o = self.options
        n = o["sequences"]
        sizes = {"train": n * 8 // 10, "val": n // 10, "test": n - n * 8 // 10 - n // 10}
        splits = {
            name: make_split(rng, k, o, o["defect"] if name == "val" else "")
            for name, k in sizes.items()
        }
        if o["defect"] == "stateful":
            splits = {
                name: Split(s.x[:, :1], s.y[:, :1], s.lengths[:1]) for name, s in splits.items()
            }
            return Dataset(splits, 1, 2, "xent", "every", chunk_length=3)
        if o["target"] == "last":
            return Dataset(splits, 1, 1, "mse", "last")
        return Dataset(splits, 1, 2, "xent", "every")


@hookimpl
def register_tasks():
    return [TaskSpec("varlen", VarlenTask, OPTIONS, "sequences of different lengths")]


def _no_lengths_backend():
    from rnnlab_numpy.backend import NumpyBackend

    class NoLengths(NumpyBackend):
        name = "nolengths"
        features = frozenset()

    return NoLengths()


def _numpy_twin():
    from rnnlab_numpy.backend import NumpyBackend

    class Twin(NumpyBackend):
        name = "twin"

    return Twin()


@hookimpl
def register_backends():
    return [
        BackendSpec("nolengths", _no_lengths_backend, "numpy without the lengths feature"),
        BackendSpec("twin", _numpy_twin, "numpy under another name"),
    ]
