"""Sequential and permuted digit classification on the 8x8 handwritten digits, the small,
offline cousin of pixel-by-pixel MNIST (Le, Jaitly & Hinton 2015).

Each image is read one pixel per step (``read = "pixel"``: T = 64, one input) or one row per
step (``"row"``: T = 8, eight inputs), pixels scaled to [0, 1]; the class (the digit) is read
from the last step; cross-entropy over 10 classes. ``permute = true`` reads the pixels in one
fixed random order, drawn from ``permutation_seed`` (not from the run's seed, so every run of
every cell sees the same order): neighbouring pixels then lie far apart in time. The 1,797
images are split at random by the run's seed into ``test_size``, ``val_size`` and the rest for
training.

Data: "Optical Recognition of Handwritten Digits" by E. Alpaydin and C. Kaynak (1998), UCI
Machine Learning Repository, https://doi.org/10.24432/C50P49, licensed CC BY 4.0; the 1,797
images of its test set as scikit-learn (BSD-3-Clause) ships them in its wheel
(``sklearn/datasets/data/digits.csv.gz``, read by :mod:`rnnlab_digits.source`). Install with
``pip install 'rnnlab[digits]'``; ``file`` points to another copy.

Metrics: ``accuracy``; the baselines of a model that ignores the image and outputs the training
split's class frequencies (:func:`class_frequencies`): ``baseline_acc`` (always the most
frequent training class) and ``baseline_loss`` (the cross-entropy of those frequencies); and
``solved``: 1.0 when ``accuracy >= 0.9`` (:attr:`DigitsTask.solved`).
"""

from pathlib import Path

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Split, Task

from .source import PIXELS, packaged_file, read, sha256

SIDE = 8
OPTIONS = (
    Option(
        "read",
        str,
        "pixel",
        "pixel: one pixel per step (T = 64); row: one row of 8 pixels per step (T = 8)",
        choices=("pixel", "row"),
    ),
    Option("permute", bool, False, "read the pixels in a fixed random order (permuted digits)"),
    Option("permutation_seed", int, 0, "the seed of that order (the same for every run)", ge=0),
    Option("val_size", int, 300, "validation images", gt=0),
    Option("test_size", int, 300, "test images (the rest train)", gt=0),
    Option("file", str, "", "a digits .csv(.gz) of your own; empty: scikit-learn's copy"),
    Option("demo_images", int, 8, "test images shown after training", ge=0),
)
SPLITS = ("train", "val", "test")
CLASSES = 10


def pixel_order(permute: bool, seed: int) -> np.ndarray:
    """The order the 64 pixels are read in: row by row, or one fixed permutation of it."""
    return np.random.default_rng(seed).permutation(PIXELS) if permute else np.arange(PIXELS)


def sequences(images: np.ndarray, order: np.ndarray, how: str) -> np.ndarray:
    """``images [n, 64]`` (0..16) as time-major inputs: ``[64, n, 1]`` (pixel) or ``[8, n, 8]``
    (row: consecutive groups of 8 in ``order``), scaled to [0, 1]."""
    pixels = images[:, order].astype(np.float64) / 16.0
    if how == "pixel":
        return np.ascontiguousarray(pixels.T[:, :, None])
    return np.ascontiguousarray(pixels.reshape(len(images), SIDE, SIDE).transpose(1, 0, 2))


def split_indices(n: int, val: int, test: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random split of ``n`` images: ``test`` for test, ``val`` for validation, the rest train
    (each in increasing order)."""
    if val + test >= n:
        raise ConfigError(
            f"val_size + test_size = {val + test} leaves no training image of {n}",
            table="task",
            key="test_size",
        )
    idx = rng.permutation(n)
    return {
        "test": np.sort(idx[:test]),
        "val": np.sort(idx[test : test + val]),
        "train": np.sort(idx[test + val :]),
    }


def class_frequencies(counts: np.ndarray) -> np.ndarray:
    """The training split's class frequencies, each count plus one (so that a class absent
    from a small training split has a finite loss; with the 1,797 images every class is
    there and the plus one moves each frequency by under 0.001)."""
    return (counts + 1) / (counts.sum() + len(counts))


class DigitsTask(Task):
    # What "solved" means (the test split's metric and its threshold): a plain convention for
    # solve rates over seeds; the metric "solved" applies it.
    solved = ("accuracy", ">=", 0.9)

    def source(self) -> Path:
        f = self.options["file"]
        if not f:
            return packaged_file()
        path = Path(f).expanduser()
        path = path if path.is_absolute() else self.context.base_dir / path
        if not path.is_file():
            raise ConfigError(f"no such file: {path}", table="task", key="file")
        return path

    def build(self, rng):
        o = self.options
        path = self.source()
        images, labels = read(path)
        order = pixel_order(o["permute"], o["permutation_seed"])
        parts = split_indices(len(labels), o["val_size"], o["test_size"], rng)
        splits = {
            name: Split(sequences(images[i], order, o["read"]), labels[i])
            for name, i in parts.items()
        }
        counts = np.bincount(labels[parts["train"]], minlength=CLASSES)
        return Dataset(
            {name: splits[name] for name in SPLITS},
            input_size=1 if o["read"] == "pixel" else SIDE,
            output_size=CLASSES,
            loss="xent",
            target="last",
            meta={"images": {k: images[i] for k, i in parts.items()}, "prior": counts},
            saved={
                "file": path.name,
                "sha256": sha256(path),
                "pixel_order": order.tolist(),
            },
        )

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        pred = model.predict(s.x).argmax(axis=-1)
        prior = class_frequencies(dataset.meta["prior"])
        accuracy = float(np.mean(pred == s.y))
        _, _, threshold = self.solved
        return {
            "accuracy": accuracy,
            "baseline_acc": float(np.mean(s.y == np.argmax(prior))),
            "baseline_loss": float(-np.mean(np.log(prior[s.y]))),
            "solved": float(accuracy >= threshold),
        }

    def demo(self, model, dataset, rng):
        k = min(self.options["demo_images"], len(dataset.splits["test"]))
        if k == 0:
            return None
        s = dataset.splits["test"]
        out = model.predict(s.x[:, :k])
        p = np.exp(out - out.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        rows = [
            [j + 1, int(s.y[j]), int(p[j].argmax()), f"{p[j].max():.2f}", f"{p[j][s.y[j]]:.2f}"]
            for j in range(k)
        ]
        return Demo(
            f"first {k} test images: their digit and the model's guess",
            columns=["image", "digit", "predicted", "its probability", "the digit's"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """The test split's confusion matrix."""
        s = dataset.splits["test"]
        pred = model.predict(s.x).argmax(axis=-1)
        counts = np.zeros((CLASSES, CLASSES), np.int64)
        np.add.at(counts, (s.y, pred), 1)
        ax = fig.subplots()
        ax.imshow(counts, cmap="Blues")
        for (i, j), c in np.ndenumerate(counts):
            if c:
                ax.text(j, i, str(c), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(CLASSES))
        ax.set_yticks(range(CLASSES))
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("digit")
        o = self.options
        how = f"{'permuted ' if o['permute'] else ''}{o['read']} by {o['read']}"
        fig.suptitle(f"digits read {how}: test accuracy {np.mean(pred == s.y):.3f}")
        return "confusion"
