"""Selective copying (Gu & Dao 2023, the Mamba paper's synthetic task; data as in the S4
repository's copying generator), scaled to CPU sizes by its options.

``M`` data tokens (``tokens``, each uniform over ``S = symbols``) sit at random, increasing
positions among ``L + M`` slots (``padding = L``), every other slot holding a noise token; then
come ``M`` markers, at which the model must output the tokens in the order they appeared.
Inputs are one-hot (noise, ``S`` tokens, marker); outputs ``S + 1`` classes; the loss is the
cross-entropy over every step, whose target is the noise class before the markers. With
``scatter = false`` the tokens take the first ``M`` slots: the plain copying task, which a
model with fixed, input-independent dynamics can solve by timing alone; scattered, it must
select by content.

Without memory a model outputs noise and then guesses: loss ``M log S / (L + 2M)``
(``baseline_loss``) and ``1/S`` of the tokens right (``baseline_acc``). Metrics: ``recall_acc``
(recalled tokens right), ``seq_acc`` (sequences whose every step is right), the baselines, and
``solved``: 1.0 when ``recall_acc >= 0.99`` (:attr:`SelectiveCopyTask.solved`).
"""

import numpy as np

from rnnlab.plugin import Dataset, Demo, Option, Task

from . import figure
from .data import distances, distinct, draw, encode, row_keys, steps

ALPHABET = "abcdefghijklmnopqrstuvwxyz"  # how the demo writes tokens 1, 2, ...
OPTIONS = (
    Option("tokens", int, 8, "M: tokens to remember and recall", ge=1),
    Option("padding", int, 32, "L: noise slots among which the tokens are scattered", ge=0),
    Option("symbols", int, 8, "S: each token is one of this many", ge=2, le=len(ALPHABET)),
    Option("scatter", bool, True, "false: the tokens come first (plain copying)"),
    Option("train_size", int, 10000, "training sequences", gt=0),
    Option("val_size", int, 1000, "validation sequences", gt=0),
    Option("test_size", int, 1000, "test sequences", gt=0),
    Option("demo_sequences", int, 5, "test sequences shown after training", ge=0),
)
SPLITS = ("train", "val", "test")


def baseline_loss(padding: int, tokens: int, symbols: int) -> float:
    """The cross-entropy of noise then uniform guesses: ``M log S / (L + 2M)``."""
    return tokens * np.log(symbols) / steps(padding, tokens)


def word(codes) -> str:
    """Tokens as letters (1 -> "a"), noise as "_"."""
    return "".join(ALPHABET[c - 1] if c > 0 else "_" for c in codes)


class SelectiveCopyTask(Task):
    # What "solved" means (the test split's metric and its threshold): a plain convention for
    # solve rates over seeds; the metric "solved" applies it.
    solved = ("recall_acc", ">=", 0.99)

    def build(self, rng):
        o = self.options
        positions, values = draw(
            o["train_size"], o["padding"], o["tokens"], o["symbols"], o["scatter"], rng
        )
        drawn = {"train": (positions, values)}
        seen = set(row_keys(positions, values))
        for name in ("val", "test"):
            drawn[name] = distinct(o[f"{name}_size"], o, rng, seen, f"{name}_size")
        splits = {name: encode(*drawn[name], o["padding"], o["symbols"]) for name in SPLITS}
        return Dataset(
            splits,
            input_size=o["symbols"] + 2,
            output_size=o["symbols"] + 1,
            loss="xent",
            target="every",
            meta={"positions": {k: v[0] for k, v in drawn.items()}},
            saved={"steps": steps(o["padding"], o["tokens"])},
        )

    def predictions(self, model, split) -> np.ndarray:
        """``[L + 2M, N]`` the class the model rates highest at every step."""
        return model.predict(split.x, "every").argmax(axis=-1)

    def metrics(self, model, dataset, split):
        o = self.options
        s, M = dataset.splits[split], o["tokens"]
        pred = self.predictions(model, s)
        recall_acc = float(np.mean(pred[-M:] == s.y[-M:]))
        _, _, threshold = self.solved
        return {
            "recall_acc": recall_acc,
            "seq_acc": float(np.mean(np.all(pred == s.y, axis=0))),
            "baseline_loss": float(baseline_loss(o["padding"], M, o["symbols"])),
            "baseline_acc": 1.0 / o["symbols"],
            "solved": float(recall_acc >= threshold),
        }

    def demo(self, model, dataset, rng):
        k = min(self.options["demo_sequences"], len(dataset.splits["test"]))
        if k == 0:
            return None
        M, L = self.options["tokens"], self.options["padding"]
        s = dataset.splits["test"]
        pred = self.predictions(model, s)[:, :k]
        shown = s.x[: L + M, :k].argmax(axis=-1)
        rows = []
        for j in range(k):
            want, got = s.y[-M:, j], pred[-M:, j]
            rows.append(
                [j + 1, word(shown[:, j]), word(want), word(got), f"{int(np.sum(want == got))}/{M}"]
            )
        return Demo(
            f"first {k} test sequences: the slots (noise as _), the tokens, what was recalled",
            columns=["seq", "slots", "tokens", "recalled", "right"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """Test accuracy of the recalled tokens against their distance to the recall."""
        o, s = self.options, dataset.splits["test"]
        M = o["tokens"]
        right = (self.predictions(model, s)[-M:] == s.y[-M:]).T
        distance = distances(dataset.meta["positions"]["test"], o["padding"])
        figure.draw(fig, right, distance, o["symbols"])
        fig.suptitle(f"selective copying, L = {o['padding']}, M = {M}: test tokens right")
        return "recall_by_distance"
