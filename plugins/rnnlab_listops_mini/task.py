"""ListOps, scaled down (Nangia & Bowman 2018; the generator of the Long Range Arena, Tay et al.
2021, reimplemented): read a nested expression such as ``[MAX 2 9 [MIN 4 7 ] 0 ]`` one token
at a time and output its value, a digit, at the end.

Expressions are drawn as LRA draws them (:mod:`rnnlab_listops_mini.language`), with the depth
and argument limits as options, and kept when their length (in tokens) lies in
``[min_length, max_length]``; no expression occurs twice across the splits. Sequences differ in
length (``Split.lengths``). Inputs are one-hot over the 15 tokens; the class is read at each
sequence's last token; cross-entropy over the 10 digits. LRA's sizes are depth 10, up to 10
arguments and 500-2000 tokens; the defaults here are depth 4, up to 4 arguments, 8-48 tokens.

Metrics: ``accuracy``; ``baseline_acc``, always answering the training split's most frequent
value; and ``solved``: 1.0 when ``accuracy >= 0.9``
(:attr:`ListOpsTask.solved`).
"""

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Split, Task

from .language import CODE, TOKENS, depth, tokens, tree, value

OPTIONS = (
    Option("max_depth", int, 4, "operators nested at most this deep", ge=1),
    Option("max_args", int, 4, "arguments per operator at most (at least 2)", ge=2),
    Option("min_length", int, 8, "shortest expression, in tokens", ge=1),
    Option("max_length", int, 48, "longest expression, in tokens", ge=1),
    Option("train_size", int, 5000, "training expressions", gt=0),
    Option("val_size", int, 500, "validation expressions", gt=0),
    Option("test_size", int, 500, "test expressions", gt=0),
    Option("demo_examples", int, 6, "test expressions shown after training", ge=0),
)
SPLITS = ("train", "val", "test")
TRIES_PER_EXPRESSION = 200  # draws allowed per expression kept, before giving up (plus 10000)
DEMO_WIDTH = 40  # characters of an expression shown in the demo


def longest(max_depth: int, max_args: int, level: int = 1) -> int:
    """The most tokens an expression can have."""
    if level >= max_depth:
        return 1
    return 2 + max_args * longest(max_depth, max_args, level + 1)


def check(o: dict) -> None:
    if o["min_length"] > o["max_length"]:
        raise ConfigError(
            f"must be <= max_length ({o['max_length']})", table="task", key="min_length"
        )
    most = longest(o["max_depth"] + 1, o["max_args"])
    if o["min_length"] > most:
        raise ConfigError(
            f"expressions of depth <= {o['max_depth']} with <= {o['max_args']} arguments have at "
            f"most {most} tokens; use a smaller min_length or larger limits",
            table="task",
            key="min_length",
        )


def draw(count: int, o: dict, rng: np.random.Generator, seen: set, key: str) -> list:
    """``count`` expressions with lengths in range, none in ``seen`` (they are added to it)."""
    out, tries, budget = [], 0, TRIES_PER_EXPRESSION * count + 10000
    while len(out) < count:
        if tries >= budget:
            raise ConfigError(
                f"cannot draw {count} distinct expressions of {o['min_length']}-"
                f"{o['max_length']} tokens (found {len(out)} in {tries} draws); widen the "
                f"lengths or the limits, or ask for fewer",
                table="task",
                key=key,
            )
        tries += 1
        # the root is level 1; operators sit at levels 1 .. max_depth, digits below them
        t = tree(1, o["max_depth"] + 1, o["max_args"], rng)
        toks = tokens(t)
        if not o["min_length"] <= len(toks) <= o["max_length"]:
            continue
        k = " ".join(toks)
        if k in seen:
            continue
        seen.add(k)
        out.append(t)
    return out


def encode(trees: list) -> Split:
    """One-hot tokens ``[T, N, 15]`` (zeros after each end), the values ``[N]``, lengths."""
    codes = [[CODE[t] for t in tokens(e)] for e in trees]
    lengths = np.array([len(c) for c in codes], np.int64)
    T, N = int(lengths.max()), len(codes)
    x = np.zeros((T, N, len(TOKENS)))
    for n, c in enumerate(codes):
        x[np.arange(len(c)), n, c] = 1.0
    return Split(x, np.array([value(e) for e in trees], np.int64), lengths)


class ListOpsTask(Task):
    # What "solved" means (the test split's metric and its threshold): a plain convention for
    # solve rates over seeds; the metric "solved" applies it.
    solved = ("accuracy", ">=", 0.9)

    def build(self, rng):
        o = self.options
        check(o)
        seen: set[str] = set()
        trees = {name: draw(o[f"{name}_size"], o, rng, seen, f"{name}_size") for name in SPLITS}
        return Dataset(
            {name: encode(trees[name]) for name in SPLITS},
            input_size=len(TOKENS),
            output_size=10,
            loss="xent",
            target="last",
            meta={"trees": trees},
        )

    def predictions(self, model, split) -> np.ndarray:
        return model.predict(split.x, "last", lengths=split.lengths).argmax(axis=-1)

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        accuracy = float(np.mean(self.predictions(model, s) == s.y))
        majority = np.argmax(np.bincount(dataset.splits["train"].y, minlength=10))
        _, _, threshold = self.solved
        return {
            "accuracy": accuracy,
            "baseline_acc": float(np.mean(s.y == majority)),
            "solved": float(accuracy >= threshold),
        }

    def demo(self, model, dataset, rng):
        k = min(self.options["demo_examples"], len(dataset.splits["test"]))
        if k == 0:
            return None
        s, trees = dataset.splits["test"], dataset.meta["trees"]["test"]
        pred = self.predictions(model, s)
        rows = []
        for j in range(k):
            text = " ".join(tokens(trees[j]))
            if len(text) > DEMO_WIDTH:
                text = text[: DEMO_WIDTH - 1] + "…"
            rows.append([int(s.lengths[j]), depth(trees[j]), text, int(s.y[j]), int(pred[j])])
        return Demo(
            f"first {k} test expressions, their value and the model's answer",
            columns=["tokens", "depth", "expression", "value", "answer"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """Test accuracy by the expressions' depth, against the majority answer."""
        s, trees = dataset.splits["test"], dataset.meta["trees"]["test"]
        right = self.predictions(model, s) == s.y
        depths = np.array([depth(t) for t in trees])
        levels = np.unique(depths)
        ax = fig.subplots()
        acc = [right[depths == d].mean() for d in levels]
        ax.bar(levels, acc, color="C0", label="test accuracy")
        for d, a in zip(levels, acc, strict=True):
            ax.annotate(str(int(np.sum(depths == d))), (d, a), ha="center", va="bottom", fontsize=7)
        base = self.metrics(model, dataset, "test")["baseline_acc"]
        ax.axhline(base, color="C3", ls="--", label=f"majority answer ({base:.2f})")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(levels)
        ax.set_xlabel("depth (operators nested; expressions per depth marked)")
        ax.set_ylabel("expressions right")
        ax.legend(loc="upper right", fontsize="small")
        fig.suptitle("ListOps (small): test accuracy by depth")
        return "accuracy_by_depth"
