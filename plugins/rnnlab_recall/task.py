"""Multi-query associative recall (MQAR; Arora, Eyuboglu et al. 2023, "Zoology"), at small
vocabularies and lengths, with sequences of different lengths.

Each sequence first shows ``D = pairs`` key-value pairs, then queries every key once, at gaps
drawn from Zoology's power law (see :mod:`rnnlab_recall.data`); at each query step the model
must output the value bound to that key, and the blank class everywhere else. Lengths are
drawn uniformly from the even lengths in ``[min_length, length]`` (``Split.lengths``; set both
to one value for fixed-length sequences). Inputs are one-hot over the vocabulary, outputs the
same ``V`` classes (class 0 is the blank), the loss the cross-entropy over every valid step.

Zoology scores only the query steps (the others carry an ignore label); here every step has a
target, the blank where no answer is due, so that the core's cross-entropy applies unchanged,
and the metrics look at the query steps. Zoology fills the other steps with random tokens by
default; here ``noise = true`` fills them with random values only, as a key there would be a
query without an answer.

A model that knows where the queries are but not which value each key holds guesses among the
``V - V//2`` values: loss ``D log(V - V//2)`` per sequence over its steps (``baseline_loss``,
the mean over the split's valid steps) and accuracy ``1 / (V - V//2)`` (``baseline_acc``).
Metrics: ``recall_acc`` (query steps answered right), ``seq_acc`` (sequences whose every step
is right), the baselines, and ``solved``: 1.0 when ``recall_acc >= 0.99``
(:attr:`RecallTask.solved`).
"""

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Task

from . import figure
from .data import allowed_lengths, distances, draw, encode, vocabularies

OPTIONS = (
    Option("vocab", int, 16, "V: tokens; keys are 1 .. V/2 - 1, values V/2 .. V - 1", ge=4),
    Option("pairs", int, 4, "D: key-value pairs per sequence, each queried once", ge=1),
    Option("length", int, 64, "longest sequence (even lengths only are drawn)", ge=4),
    Option("min_length", int, 32, "shortest sequence (at least 4 * pairs)", ge=4),
    Option(
        "power_a",
        float,
        0.01,
        "the gaps' power law P(g) ~ a (g+1)^(a-1): small a, most queries soon; 1: uniform",
        gt=0,
        le=1,
    ),
    Option("noise", bool, False, "fill the steps between queries with random values"),
    Option("train_size", int, 10000, "training sequences", gt=0),
    Option("val_size", int, 1000, "validation sequences", gt=0),
    Option("test_size", int, 1000, "test sequences", gt=0),
    Option("demo_sequences", int, 4, "test sequences shown after training", ge=0),
)
SPLITS = ("train", "val", "test")


def check(o: dict) -> None:
    """A ConfigError naming the option when the sequences cannot be built."""
    keys, values = vocabularies(o["vocab"])
    if o["pairs"] > min(len(keys), len(values)):
        raise ConfigError(
            f"{o['pairs']} pairs need {o['pairs']} distinct keys, and vocab {o['vocab']} has "
            f"{len(keys)} (keys are 1 .. vocab/2 - 1); use at most {len(keys)} or a larger vocab",
            table="task",
            key="pairs",
        )
    if o["min_length"] > o["length"]:
        raise ConfigError(f"must be <= length ({o['length']})", table="task", key="min_length")
    if o["min_length"] < 4 * o["pairs"]:
        raise ConfigError(
            f"must be >= 4 * pairs = {4 * o['pairs']}: the context takes 2 * pairs steps and the "
            f"queries need as many after it",
            table="task",
            key="min_length",
        )
    if not len(allowed_lengths(o["min_length"], o["length"])):
        raise ConfigError(
            f"no even length lies in {o['min_length']}..{o['length']}", table="task", key="length"
        )


def values_count(vocab: int) -> int:
    return len(vocabularies(vocab)[1])


class RecallTask(Task):
    # What "solved" means (the test split's metric and its threshold): a plain convention for
    # solve rates over seeds; the metric "solved" applies it.
    solved = ("recall_acc", ">=", 0.99)

    def build(self, rng):
        o = self.options
        check(o)
        drawn = {"train": draw(o["train_size"], o, rng)}
        seen = {codes.astype(np.int32).tobytes() for codes, _, _ in drawn["train"]}
        for name in ("val", "test"):
            drawn[name] = draw(o[f"{name}_size"], o, rng, seen, f"{name}_size")
        return Dataset(
            {name: encode(drawn[name], o["vocab"]) for name in SPLITS},
            input_size=o["vocab"],
            output_size=o["vocab"],
            loss="xent",
            target="every",
            meta={"queries": {k: np.stack([q for _, _, q in v]) for k, v in drawn.items()}},
        )

    def predictions(self, model, split) -> np.ndarray:
        """``[T, N]`` the class the model rates highest at every step."""
        return model.predict(split.x, "every", lengths=split.lengths).argmax(axis=-1)

    def metrics(self, model, dataset, split):
        o, s = self.options, dataset.splits[split]
        pred = self.predictions(model, s)
        valid = np.arange(s.x.shape[0])[:, None] < s.lengths[None, :]
        query = s.y > 0
        recall_acc = float(np.mean(pred[query] == s.y[query]))
        nv = values_count(o["vocab"])
        _, _, threshold = self.solved
        return {
            "recall_acc": recall_acc,
            "seq_acc": float(np.mean(np.all((pred == s.y) | ~valid, axis=0))),
            "baseline_loss": float(o["pairs"] * len(s) * np.log(nv) / s.lengths.sum()),
            "baseline_acc": 1.0 / nv,
            "solved": float(recall_acc >= threshold),
        }

    def demo(self, model, dataset, rng):
        k = min(self.options["demo_sequences"], len(dataset.splits["test"]))
        if k == 0:
            return None
        s, D = dataset.splits["test"], self.options["pairs"]
        queries = dataset.meta["queries"]["test"]
        pred = self.predictions(model, s)
        codes = s.x.argmax(axis=-1)
        rows = []
        for j in range(k):
            pairs = " ".join(f"{codes[2 * i, j]}:{codes[2 * i + 1, j]}" for i in range(D))
            order = np.argsort(queries[j])
            asked = " ".join(f"{codes[q, j]}@{q}→{pred[q, j]}" for q in queries[j][order].tolist())
            right = int(np.sum(pred[queries[j], j] == s.y[queries[j], j]))
            rows.append([j + 1, int(s.lengths[j]), pairs, asked, f"{right}/{D}"])
        return Demo(
            f"first {k} test sequences: the pairs (key:value) and each query (key@step→answer)",
            columns=["seq", "length", "pairs", "queries", "right"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """Test queries answered right against their distance to their pair."""
        o, s = self.options, dataset.splits["test"]
        queries = dataset.meta["queries"]["test"]
        pred = self.predictions(model, s)
        cols = np.arange(len(s))[:, None]
        right = pred[queries, cols] == s.y[queries, cols]
        figure.draw(fig, right, distances(queries), 1.0 / values_count(o["vocab"]))
        fig.suptitle(
            f"associative recall, {o['pairs']} pairs, vocab {o['vocab']}, lengths "
            f"{o['min_length']}-{o['length']}: test queries right"
        )
        return "recall_by_distance"
