"""rnnlab task plugin `delay`: output the input from `delay` steps ago.

At every step t the model sees one random value x_t and must output x_{t-delay} (0 for the
first `delay` steps), so it has to carry each value through its hidden state for `delay` steps:
a direct test of short-term memory.
"""

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Split, Task, TaskSpec, hookimpl

__version__ = "0.1.0"

OPTIONS = (
    Option("length", int, 20, "steps per sequence", gt=0),
    Option("delay", int, 3, "how many steps back the target looks", ge=0),
    Option("sequences", int, 1000, "sequences in all: 80% train, 10% val, 10% test", ge=10),
)


def delayed(rng: np.random.Generator, n: int, length: int, delay: int) -> Split:
    """n random sequences x [T, n, 1] and their delayed copies y [T, n, 1]."""
    x = rng.uniform(-1.0, 1.0, size=(length, n, 1))
    y = np.zeros_like(x)
    y[delay:] = x[: length - delay]  # y_t = x_{t-delay}
    return Split(x, y)


class DelayTask(Task):
    def build(self, rng):
        o = self.options
        if o["delay"] >= o["length"]:
            raise ConfigError(
                f"must be less than length ({o['length']})", table="task", key="delay"
            )
        n_train, n_val = o["sequences"] * 8 // 10, o["sequences"] // 10
        sizes = {"train": n_train, "val": n_val, "test": o["sequences"] - n_train - n_val}
        splits = {name: delayed(rng, n, o["length"], o["delay"]) for name, n in sizes.items()}
        return Dataset(splits, input_size=1, output_size=1, loss="mse", target="every")

    def metrics(self, model, dataset, split):
        s, d = dataset.splits[split], self.options["delay"]
        out = model.predict(s.x, target="every")
        # score only the steps that have a value to recall; always answering 0 scores 1/3
        mse = float(np.mean((out[d:] - s.y[d:]) ** 2))
        return {"recall_mse": mse, "r2": 1.0 - mse / float(np.var(s.y[d:]))}

    def demo(self, model, dataset, rng):
        s = dataset.splits["test"]
        i = int(rng.integers(len(s)))
        out = model.predict(s.x[:, i : i + 1], target="every")[:, 0, 0]
        rows = [
            [t, f"{s.x[t, i, 0]:+.3f}", f"{s.y[t, i, 0]:+.3f}", f"{out[t]:+.3f}"]
            for t in range(len(out))
        ]
        return Demo(f"test sequence {i}", columns=["t", "input", "target", "output"], rows=rows)


@hookimpl
def register_tasks():
    return [TaskSpec("delay", DelayTask, OPTIONS, "output the input from `delay` steps ago")]
