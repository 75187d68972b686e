"""Dyck languages: balanced brackets, trained on short strings and tested on longer ones.

objective "next" (the default; Gers & Schmidhuber 2001, Suzgun et al. 2019): the inputs are the
symbols of a Dyck word, one-hot; after every symbol the model predicts the set of symbols that
may come next (every opening bracket; the closing bracket of the innermost open pair, if one is
open; the end of the string, if none is): ``2k+1`` 0/1 targets at every step, mean squared error.
For Dyck-1 the set hangs on one bit, whether the count of open brackets is zero, so a model must
count, and keep counting past the depths it saw in training; Dyck-2 needs a stack.

objective "matched" (per-step tagging): the inputs are any bracket strings; each symbol is tagged
1 if it has a partner, else 0 (see :func:`rnnlab_dyck.language.matched_tags`). For an opening
bracket that depends on what comes later: the variant where reading both ways matters.

The test split spreads ``test_size`` strings evenly over length bands of ``band`` symbols from
``min_length`` to ``test_max_length``; metrics report whole-string accuracy per band.
"""

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Task

from . import figure
from .data import allowed_lengths, bands, draw, encode, keys, sampler
from .language import MAX_PAIRS, depth, text
from .metrics import first_error, score

OPTIONS = (
    Option(
        "pairs",
        int,
        1,
        "kinds of bracket pair: 1 is Dyck-1 (), 2 is Dyck-2 ()[], ...",
        ge=1,
        le=MAX_PAIRS,
    ),
    Option(
        "objective",
        str,
        "next",
        "next: predict the set of possible next symbols at every "
        "step; matched: tag every bracket with whether it has a partner",
        choices=("next", "matched"),
    ),
    Option("min_length", int, 2, "shortest string (train, val and test)", ge=1),
    Option("train_max_length", int, 40, "longest training (and validation) string", ge=1),
    Option("test_max_length", int, 100, "longest test string", ge=2),
    Option("band", int, 20, "width of the length bands of the test metrics acc_len_LO_HI", ge=1),
    Option("train_size", int, 2000, "training strings", gt=0),
    Option("val_size", int, 500, "validation strings (training lengths)", gt=0),
    Option("test_size", int, 1000, "test strings, spread evenly over the length bands", gt=0),
    Option("demo_strings", int, 6, "test strings shown after training (across the bands)", ge=0),
)
DEMO_WIDTH = 32  # characters of a string shown in the demo table


def outputs(model, split) -> np.ndarray:
    """Head outputs at every step; those after a string's end are left out by the metrics."""
    return model.predict(split.x, "every", lengths=split.lengths)


class DyckTask(Task):
    def _check(self) -> None:
        o = self.options
        if o["train_max_length"] < o["min_length"]:
            raise ConfigError(
                f"must be >= min_length ({o['min_length']})", table="task", key="train_max_length"
            )
        if o["test_max_length"] <= o["train_max_length"]:
            raise ConfigError(
                f"must be > train_max_length ({o['train_max_length']}) so that the "
                f"test reaches past the training lengths",
                table="task",
                key="test_max_length",
            )
        if not len(allowed_lengths(o["min_length"], o["train_max_length"], o["objective"])):
            raise ConfigError(
                f"Dyck words have even lengths: none lies in "
                f"{o['min_length']}..{o['train_max_length']}",
                table="task",
                key="train_max_length",
            )

    def test_bands(self) -> list[tuple[int, int, np.ndarray]]:
        """The bands the test split fills: ``(lo, hi, usable lengths)``, empty ones left out."""
        o = self.options
        out = []
        for lo, hi in bands(o["test_max_length"], o["band"]):
            usable = allowed_lengths(max(lo, o["min_length"]), hi, o["objective"])
            if len(usable):
                out.append((lo, hi, usable))
        return out

    def build(self, rng):
        self._check()
        o = self.options
        pairs, objective = o["pairs"], o["objective"]
        sample = sampler(objective, pairs)
        short = allowed_lengths(o["min_length"], o["train_max_length"], objective)
        train = draw(o["train_size"], short, sample, rng, set(), "train", "train_size")
        seen = keys(train)
        val = draw(o["val_size"], short, sample, rng, seen, "validation", "val_size")
        seen |= keys(val)
        test_bands = self.test_bands()
        share = np.diff(np.linspace(0, o["test_size"], len(test_bands) + 1).round().astype(int))
        test = []
        for (lo, hi, usable), n in zip(test_bands, share, strict=True):
            test += draw(int(n), usable, sample, rng, seen, f"test (band {lo}-{hi})", "test_size")
        strings = {"train": train, "val": val, "test": test}
        splits = {name: encode(s, pairs, objective) for name, s in strings.items()}
        next_symbols = objective == "next"
        return Dataset(
            splits,
            input_size=2 * pairs,
            output_size=2 * pairs + 1 if next_symbols else 2,
            loss="mse" if next_symbols else "xent",
            target="every",
            meta={"strings": strings},
            saved={
                "language": f"Dyck-{pairs}",
                "objective": objective,
                "bands": [[lo, hi] for lo, hi, _ in test_bands],
            },
        )

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        length_bands = [(lo, hi) for lo, hi, _ in self.test_bands()]
        return score(outputs(model, s), s, self.options["objective"], length_bands)

    def demo(self, model, dataset, rng):
        k = min(self.options["demo_strings"], len(dataset.splits["test"]))
        if k == 0:
            return None
        s, strings = dataset.splits["test"], dataset.meta["strings"]["test"]
        pairs, objective = self.options["pairs"], self.options["objective"]
        errors = first_error(outputs(model, s), s, objective)
        # spread over the bands (the test split holds them in order), shortest first
        picks = np.linspace(0, len(strings) - 1, k).round().astype(int)
        picks = picks[np.argsort(s.lengths[picks], kind="stable")]
        rows = []
        for i in picks:
            shown = text(strings[i], pairs)
            if len(shown) > DEMO_WIDTH:
                shown = shown[: DEMO_WIDTH - 1] + "…"
            rows.append(
                [
                    int(s.lengths[i]),
                    depth(strings[i], pairs),
                    shown,
                    "yes" if errors[i] == 0 else "no",
                    int(errors[i]) if errors[i] else "-",
                ]
            )
        what = "next-symbol sets" if objective == "next" else "partner tags"
        return Demo(
            f"test strings from the shortest to the longest band ({what})",
            columns=["length", "depth", "string", "all steps right", "first wrong step"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """Test strings right per length, training lengths shaded, band means as bars."""
        o, s = self.options, dataset.splits["test"]
        figure.draw(
            fig,
            outputs(model, s),
            s,
            o["objective"],
            (o["min_length"], o["train_max_length"]),
            [(lo, hi) for lo, hi, _ in self.test_bands()],
        )
        fig.suptitle(
            f"{dataset.saved['language']} ({o['objective']}), test split: strings right by length"
        )
        return "length_accuracy"
