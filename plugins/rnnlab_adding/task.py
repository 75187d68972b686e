"""The adding problem (Hochreiter & Schmidhuber 1997), in the variant of Le, Jaitly & Hinton 2015.

Each of the T steps carries two inputs: a value drawn from U(0, 1) and a marker. Exactly two steps
are marked (marker 1, all others 0): one in the first half (steps [0, T//2)) and one in the second
(steps [T//2, T)). The target, read at the last step, is the sum of the two marked values; the loss
is the mean squared error. Always predicting 1 (the target's mean) gives an MSE of 1/6 ~ 0.167, the
baseline a model must beat to have remembered anything.

Metrics: ``mse``, ``within_TOLERANCE`` (predictions that close to the target), ``baseline_mse``
and ``solved``: 1.0 when ``mse < 0.01`` (:attr:`AddingTask.solved`, 6% of the baseline), so
that its mean over seeds is the solve rate. Any ``length >= 2`` works; the experiment files
adding_T*.toml run it at 200 to 1000 steps.
"""

import numpy as np

from rnnlab.plugin import Dataset, Demo, Option, Split, Task

OPTIONS = (
    Option("length", int, 100, "steps per sequence (T)", ge=2),
    Option("train_size", int, 10000, "training sequences", gt=0),
    Option("val_size", int, 1000, "validation sequences", gt=0),
    Option("test_size", int, 1000, "test sequences", gt=0),
    Option(
        "tolerance",
        float,
        0.04,
        "a prediction within this of the target counts as right (metric within_TOLERANCE)",
        gt=0,
    ),
    Option("demo_sequences", int, 5, "test sequences shown after training", ge=0),
)
BASELINE = 1.0  # the target's mean: E[u1 + u2] = 1


def sequences(n: int, length: int, rng: np.random.Generator) -> tuple[Split, np.ndarray]:
    """``n`` sequences as a Split (x [T, n, 2], y [n, 1]) and the two marked steps [n, 2]."""
    values = rng.uniform(0.0, 1.0, (length, n))
    half = length // 2
    marks = np.stack([rng.integers(0, half, n), rng.integers(half, length, n)], axis=1)
    markers = np.zeros((length, n))
    cols = np.arange(n)
    markers[marks[:, 0], cols] = 1.0
    markers[marks[:, 1], cols] = 1.0
    # target = u_a + u_b, the values at the two marked steps
    y = values[marks[:, 0], cols] + values[marks[:, 1], cols]
    x = np.stack([values, markers], axis=-1)
    return Split(x, y[:, None]), marks


class AddingTask(Task):
    # What "solved" means (the test split's metric and its threshold): a plain convention for
    # solve rates over seeds; the metric "solved" applies it.
    solved = ("mse", "<", 0.01)

    def build(self, rng):
        o = self.options
        splits, marks = {}, {}
        for name in ("train", "val", "test"):
            splits[name], marks[name] = sequences(o[f"{name}_size"], o["length"], rng)
        return Dataset(
            splits, input_size=2, output_size=1, loss="mse", target="last", meta={"marks": marks}
        )

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        err = model.predict(s.x) - s.y
        tol = self.options["tolerance"]
        mse = float(np.mean(err * err))
        _, _, threshold = self.solved
        return {
            "mse": mse,
            f"within_{tol:g}": float(np.mean(np.abs(err) <= tol)),
            "baseline_mse": float(np.mean((BASELINE - s.y) ** 2)),
            "solved": float(mse < threshold),
        }

    def demo(self, model, dataset, rng):
        k = min(self.options["demo_sequences"], len(dataset.splits["test"]))
        if k == 0:
            return None
        s, marks = dataset.splits["test"], dataset.meta["marks"]["test"]
        pred = model.predict(s.x[:, :k])[:, 0]
        rows = []
        for j in range(k):
            a, b = marks[j]
            ua, ub = s.x[a, j, 0], s.x[b, j, 0]
            rows.append(
                [
                    j + 1,
                    f"{a}: {ua:.3f}",
                    f"{b}: {ub:.3f}",
                    f"{s.y[j, 0]:.3f}",
                    f"{pred[j]:.3f}",
                    f"{pred[j] - s.y[j, 0]:+.3f}",
                ]
            )
        return Demo(
            f"first {k} test sequences (step: value of each marked step)",
            columns=["seq", "first mark", "second mark", "target", "predicted", "error"],
            rows=rows,
        )
