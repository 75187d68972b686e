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

``dataset = "mnist"``: the same task on MNIST (28x28: T = 784 pixel by pixel, 28 row by row;
LeCun, Cortes & Burges), downloaded once into a cache folder and checked against its MD5
checksums (:mod:`rnnlab_digits.mnist`); the test images come from MNIST's test set, the
validation and training images from its training set.

Metrics: ``accuracy``; the baselines of a model that ignores the image and outputs the training
split's class frequencies (:func:`class_frequencies`): ``baseline_acc`` (always the most
frequent training class) and ``baseline_loss`` (the cross-entropy of those frequencies); and
``solved``: 1.0 when ``accuracy >= 0.9`` (:attr:`DigitsTask.solved`).
"""

from pathlib import Path

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Split, Task

from . import mnist
from .source import packaged_file, read, sha256

SIDES = {"digits": 8, "mnist": 28}  # image side, pixels
TOP = {"digits": 16.0, "mnist": 255.0}  # the largest pixel value
OPTIONS = (
    Option(
        "dataset",
        str,
        "digits",
        "digits: scikit-learn's 8x8 digits; mnist: MNIST's 28x28 digits (downloaded once)",
        choices=("digits", "mnist"),
    ),
    Option(
        "read",
        str,
        "pixel",
        "pixel: one pixel per step (T = 64, MNIST 784); row: one row per step (T = 8, MNIST 28)",
        choices=("pixel", "row"),
    ),
    Option("permute", bool, False, "read the pixels in a fixed random order (permuted digits)"),
    Option("permutation_seed", int, 0, "the seed of that order (the same for every run)", ge=0),
    Option("train_size", int, 0, "training images; 0: every image not held out", ge=0),
    Option("val_size", int, 300, "validation images", gt=0),
    Option("test_size", int, 300, "test images (MNIST: drawn from its test set)", gt=0),
    Option("file", str, "", "a digits .csv(.gz) of your own; empty: scikit-learn's copy"),
    Option("cache", str, "", "MNIST's cache folder; empty: $RNNLAB_CACHE or ~/.cache/rnnlab"),
    Option("demo_images", int, 8, "test images shown after training", ge=0),
)
SPLITS = ("train", "val", "test")
CLASSES = 10


def pixel_order(permute: bool, seed: int, pixels: int = 64) -> np.ndarray:
    """The order the pixels are read in: row by row, or one fixed permutation of it."""
    return np.random.default_rng(seed).permutation(pixels) if permute else np.arange(pixels)


def sequences(
    images: np.ndarray, order: np.ndarray, how: str, side: int = 8, top: float = 16.0
) -> np.ndarray:
    """``images [n, side * side]`` (0..top) as time-major inputs: ``[side * side, n, 1]``
    (pixel) or ``[side, n, side]`` (row: consecutive groups of ``side`` in ``order``), scaled
    to [0, 1]."""
    pixels = images[:, order].astype(np.float64) / top
    if how == "pixel":
        return np.ascontiguousarray(pixels.T[:, :, None])
    return np.ascontiguousarray(pixels.reshape(len(images), side, side).transpose(1, 0, 2))


def split_indices(
    n: int, val: int, test: int, rng: np.random.Generator, train: int = 0
) -> dict[str, np.ndarray]:
    """A random split of ``n`` images: ``test`` for test, ``val`` for validation, the rest
    (or its first ``train``) for training; each in increasing order."""
    if val + test >= n:
        raise ConfigError(
            f"val_size + test_size = {val + test} leaves no training image of {n}",
            table="task",
            key="test_size",
        )
    idx = rng.permutation(n)
    rest = idx[test + val :]
    return {
        "test": np.sort(idx[:test]),
        "val": np.sort(idx[test : test + val]),
        "train": np.sort(rest[:train] if train else rest),
    }


def mnist_split(
    parts: dict, val: int, test: int, rng: np.random.Generator, train: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST's images by split: test drawn from its test set, validation and training from its
    training set."""
    n_train, n_test = len(parts["train"][1]), len(parts["test"][1])
    if test > n_test:
        raise ConfigError(
            f"MNIST's test set holds {n_test} images, fewer than {test}",
            table="task",
            key="test_size",
        )
    chosen = np.sort(rng.permutation(n_test)[:test])
    held = split_indices(n_train, val, 0, rng, train)
    images, labels = parts["train"]
    return {
        "train": (images[held["train"]], labels[held["train"]]),
        "val": (images[held["val"]], labels[held["val"]]),
        "test": (parts["test"][0][chosen], parts["test"][1][chosen]),
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

    def images(self, rng) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
        """The images and labels of each split, and what to save about their source."""
        o = self.options
        sizes = (o["val_size"], o["test_size"], rng, o["train_size"])
        if o["dataset"] == "mnist":
            cache = o["cache"]
            if cache and not Path(cache).expanduser().is_absolute():
                cache = str(self.context.base_dir / cache)
            folder = mnist.cache_folder(cache)
            parts = mnist.load(mnist.ensure(folder))
            return mnist_split(parts, *sizes), {"files_md5": dict(mnist.FILES)}
        path = self.source()
        images, labels = read(path)
        idx = split_indices(len(labels), *sizes)
        return {k: (images[i], labels[i]) for k, i in idx.items()}, {
            "file": path.name,
            "sha256": sha256(path),
        }

    def build(self, rng):
        o = self.options
        side, top = SIDES[o["dataset"]], TOP[o["dataset"]]
        parts, saved = self.images(rng)
        order = pixel_order(o["permute"], o["permutation_seed"], side * side)
        splits = {
            name: Split(sequences(parts[name][0], order, o["read"], side, top), parts[name][1])
            for name in SPLITS
        }
        counts = np.bincount(parts["train"][1], minlength=CLASSES)
        return Dataset(
            splits,
            input_size=1 if o["read"] == "pixel" else side,
            output_size=CLASSES,
            loss="xent",
            target="last",
            meta={"images": {k: v[0] for k, v in parts.items()}, "prior": counts},
            saved={"dataset": o["dataset"], **saved, "pixel_order": order.tolist()},
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
        fig.suptitle(f"{o['dataset']} read {how}: test accuracy {np.mean(pred == s.y):.3f}")
        return "confusion"
