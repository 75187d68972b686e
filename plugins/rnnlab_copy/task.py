"""Copy memory (Hochreiter & Schmidhuber 1997), as set by Arjovsky, Shah & Bengio 2016.

A sequence of ``T + 20`` steps shows 10 symbols drawn uniformly from 8, then ``T - 1`` blanks,
the delimiter, and 10 more blanks; the model must output blanks until the delimiter's
``K = 10`` blanks begin and then the 10 symbols it saw ``T + 10`` steps earlier, in order
(``recall`` and ``symbols`` change the 10 and the 8). Inputs are one-hot (blank, ``S`` symbols,
delimiter), the outputs ``S + 1`` classes (blank and the symbols), the loss the cross-entropy
over every step.

A model without memory outputs blanks and then guesses: its loss is ``K log S / (T + 2K)``
(``baseline_loss``; ``10 log 8 / (T + 20)`` in the paper) and it gets ``1/S`` of the recalled
symbols right (``baseline_acc``).

Metrics: ``recall_acc`` (the recalled symbols right), ``seq_acc`` (sequences whose every step
is right), the baselines, and ``solved``: 1.0 when ``recall_acc >= 0.99`` (see
:attr:`CopyTask.solved`), so that its mean over seeds is the solve rate.
"""

import numpy as np

from rnnlab.plugin import Dataset, Demo, Option, Task

from . import figure
from .data import distinct_symbols, draw_symbols, encode, steps

ALPHABET = "abcdefghijklmnopqrstuvwxyz"  # how the demo writes symbols 1, 2, ...
OPTIONS = (
    Option(
        "length",
        int,
        50,
        "T: blanks between the symbols and their recall, delimiter included",
        ge=1,
    ),
    Option("recall", int, 10, "K: symbols to remember and recall", ge=1),
    Option("symbols", int, 8, "S: the symbols are drawn from this many", ge=2, le=len(ALPHABET)),
    Option("train_size", int, 10000, "training sequences", gt=0),
    Option("val_size", int, 1000, "validation sequences", gt=0),
    Option("test_size", int, 1000, "test sequences", gt=0),
    Option("demo_sequences", int, 5, "test sequences shown after training", ge=0),
)
SPLITS = ("train", "val", "test")


def baseline_loss(length: int, recall: int, symbols: int) -> float:
    """The cross-entropy of blanks then uniform guesses: ``K log S / (T + 2K)``."""
    return recall * np.log(symbols) / steps(length, recall)


def word(codes) -> str:
    """Symbols as letters (1 -> "a"), a blank as "_"."""
    return "".join(ALPHABET[c - 1] if c > 0 else "_" for c in codes)


class CopyTask(Task):
    # What "solved" means (the test split's metric and its threshold): a plain convention for
    # solve rates over seeds; the metric "solved" applies it.
    solved = ("recall_acc", ">=", 0.99)

    def build(self, rng):
        o = self.options
        K, S = o["recall"], o["symbols"]
        train = draw_symbols(o["train_size"], K, S, rng)
        seen = {row.astype(np.uint8).tobytes() for row in train}
        data = {"train": train}
        for name in ("val", "test"):
            data[name] = distinct_symbols(o[f"{name}_size"], K, S, rng, seen, f"{name}_size")
        splits = {name: encode(data[name], o["length"], S) for name in SPLITS}
        return Dataset(
            splits,
            input_size=S + 2,
            output_size=S + 1,
            loss="xent",
            target="every",
            meta={"symbols": data},
            saved={"steps": steps(o["length"], K)},
        )

    def predictions(self, model, split) -> np.ndarray:
        """``[T + 2K, N]`` the class the model rates highest at every step."""
        return model.predict(split.x, "every").argmax(axis=-1)

    def metrics(self, model, dataset, split):
        o = self.options
        s = dataset.splits[split]
        pred, K = self.predictions(model, s), o["recall"]
        recall_acc = float(np.mean(pred[-K:] == s.y[-K:]))
        metric, _, threshold = self.solved
        return {
            "recall_acc": recall_acc,
            "seq_acc": float(np.mean(np.all(pred == s.y, axis=0))),
            "baseline_loss": float(baseline_loss(o["length"], K, o["symbols"])),
            "baseline_acc": 1.0 / o["symbols"],
            "solved": float(recall_acc >= threshold),
        }

    def demo(self, model, dataset, rng):
        k = min(self.options["demo_sequences"], len(dataset.splits["test"]))
        if k == 0:
            return None
        K = self.options["recall"]
        s = dataset.splits["test"]
        pred = self.predictions(model, s)[:, :k]
        rows = []
        for j in range(k):
            want, got = s.y[-K:, j], pred[-K:, j]
            rows.append([j + 1, word(want), word(got), f"{int(np.sum(want == got))}/{K}"])
        return Demo(
            f"first {k} test sequences: the symbols shown, and what the model recalled "
            f"{self.options['length'] + K} steps later",
            columns=["seq", "symbols", "recalled", "right"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """Test accuracy at each position of the recalled symbols, with chance."""
        o, s = self.options, dataset.splits["test"]
        figure.draw(fig, self.predictions(model, s), s.y, o["recall"], o["symbols"])
        fig.suptitle(f"copy memory, T = {o['length']}: recalled symbols right (test split)")
        return "recall_accuracy"
