"""Labelled sequences of one's own, of different lengths: classify them (class-name labels) or
regress a number from them (numeric labels).

Sequences are padded after their end into time-major ``x [T, N, I]`` with ``Split.lengths``;
the model reads each sequence's own last step (PyTorch's packed semantics). Numeric steps are
standardised per feature with the mean and standard deviation of the train steps; text is read
as characters, one-hot over the vocabulary of every character in the file (saved with the run).
Splits are stratified by class and seeded, or given by a split field. Every score sits beside a
baseline: the train split's majority class, or the train split's mean label.
"""

from __future__ import annotations

import numpy as np

from rnnlab.plugin import ConfigError, Dataset, Demo, Option, Split, Task, data_error

from . import scores
from .read import Example, Fields, file_format, read_examples
from .splits import SPLITS, assign

OPTIONS = (
    Option("path", str, "", "the JSON Lines or CSV file, relative to the experiment file"),
    Option(
        "format",
        str,
        "auto",
        "file format (auto: from the suffix, .jsonl/.ndjson/.json or .csv)",
        choices=("auto", "jsonl", "csv"),
    ),
    Option(
        "sequence_field",
        str,
        "sequence",
        "key (JSON) or column (CSV, one row per sequence) holding each sequence",
    ),
    Option("label_field", str, "label", "key or column holding each label"),
    Option(
        "split_field",
        str,
        "",
        "key or column naming each example's split (train, val, "
        "test); empty: stratified seeded splits",
    ),
    Option(
        "id_field",
        str,
        "",
        "CSV with one row per step: the column whose value groups rows into sequences",
    ),
    Option(
        "columns",
        list,
        [],
        "CSV with one row per step: the numeric columns of a step "
        "(default: every column but the id, label and split)",
        item=str,
    ),
    Option(
        "labels",
        str,
        "auto",
        "classes (classification) or numbers (regression); auto: JSON "
        "numbers are numbers, anything else is a class name",
        choices=("auto", "classes", "numbers"),
    ),
    Option(
        "normalize",
        bool,
        True,
        "standardise numeric steps with the train split's mean and standard deviation per feature",
    ),
    Option("train_fraction", float, 0.7, "share of each class for training", gt=0, le=1),
    Option(
        "val_fraction",
        float,
        0.15,
        "share of each class for validation (test gets the "
        "rest); with a split field that names no val example, this share of train",
        gt=0,
        le=1,
    ),
    Option("demo_rows", int, 10, "test examples shown after training (regression)", ge=0),
)


def pad(steps: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """``x [T, N, width]`` zero-padded after each sequence's end, and the lengths ``[N]``."""
    lengths = np.array([len(s) for s in steps], dtype=np.int64)
    x = np.zeros((int(lengths.max()), len(steps), width))
    for n, s in enumerate(steps):
        x[: len(s), n] = s
    return x, lengths


class SequencesTask(Task):
    def examples(self) -> tuple[list[Example], str]:
        o = self.options
        if not o["path"]:
            raise ConfigError(
                "set the JSON Lines or CSV file to read (relative to the experiment file)",
                table="task",
                key="path",
            )
        path = self.context.base_dir / o["path"]
        fmt = file_format(path, o["format"])
        fields = Fields(
            o["sequence_field"],
            o["label_field"],
            o["split_field"],
            o["id_field"],
            tuple(o["columns"]),
        )
        if fmt == "jsonl" and (o["id_field"] or o["columns"]):
            raise ConfigError(
                "applies to CSV files with one row per step only",
                table="task",
                key="id_field" if o["id_field"] else "columns",
            )
        return read_examples(path, fmt, fields, o["labels"]), fmt

    def build(self, rng: np.random.Generator) -> Dataset:
        o = self.options
        if o["train_fraction"] + o["val_fraction"] >= 1:
            raise ConfigError(
                f"train_fraction + val_fraction must be < 1 to leave a test split, got "
                f"{o['train_fraction']} + {o['val_fraction']}",
                table="task",
                key="val_fraction",
            )
        examples, fmt = self.examples()
        path = self.context.base_dir / o["path"]
        field = f"{'key' if fmt == 'jsonl' else 'column'} {o['label_field']!r}"
        classify = isinstance(examples[0].label, str)
        saved: dict = {"data": {"path": str(path), "format": fmt, "examples": len(examples)}}
        if classify:
            classes = sorted({e.label for e in examples})
            index = {c: i for i, c in enumerate(classes)}
            labels = np.array([index[e.label] for e in examples], dtype=np.int64)
            counts = np.bincount(labels, minlength=len(classes))
            if np.any(counts == 1):
                c = int(np.argmax(counts == 1))
                line = next(e.line for e in examples if e.label == classes[c])
                raise data_error(
                    path,
                    f"line {line}, {field}: class {classes[c]!r} appears only "
                    f"once; every class needs at least two examples (one to "
                    f"learn from, one to test on): add more or remove it",
                )
            groups = labels
        else:
            labels = np.array([e.label for e in examples], dtype=float)
            groups = np.zeros(len(examples), dtype=np.int64)
        parts = assign(
            path,
            examples,
            groups,
            (o["train_fraction"], o["val_fraction"]),
            bool(o["split_field"]),
            rng,
        )
        if classify:
            seen = set(labels[parts["train"]].tolist())
            for name in ("val", "test"):
                for i in parts[name]:
                    if labels[i] not in seen:
                        raise data_error(
                            path,
                            f"line {examples[i].line}, {field}: class "
                            f"{classes[labels[i]]!r} is in the {name} split "
                            f"but never in train",
                        )
        text = isinstance(examples[0].steps, str)
        if text:
            vocab = sorted({c for e in examples for c in e.steps})
            pos = {c: i for i, c in enumerate(vocab)}
            eye = np.eye(len(vocab))
            steps = [eye[[pos[c] for c in e.steps]] for e in examples]
            saved["vocabulary"] = vocab
        else:
            steps = [e.steps for e in examples]
            train_steps = np.concatenate([steps[i] for i in parts["train"]])
            mean, std = train_steps.mean(axis=0), train_steps.std(axis=0)
            std = np.where(std > 0, std, 1.0)
            if o["normalize"]:
                steps = [(s - mean) / std for s in steps]
                saved["normalisation"] = {"mean": mean.tolist(), "std": std.tolist()}
        width = steps[0].shape[1]
        saved["data"].update(
            kind="text" if text else "numbers",
            features=width,
            lengths={"min": min(len(s) for s in steps), "max": max(len(s) for s in steps)},
        )
        meta = {"examples": examples, "parts": parts, "classify": classify}
        if classify:
            y_all = labels
            saved["classes"] = classes
            saved["class_counts"] = {
                name: dict(
                    zip(
                        classes,
                        np.bincount(labels[idx], minlength=len(classes)).tolist(),
                        strict=True,
                    )
                )
                for name, idx in parts.items()
            }
            meta["classes"] = classes
            meta["majority"] = int(
                np.argmax(np.bincount(labels[parts["train"]], minlength=len(classes)))
            )
        else:
            y_mean, y_std = labels[parts["train"]].mean(), labels[parts["train"]].std()
            y_std = y_std if y_std > 0 else 1.0
            y_all = ((labels - y_mean) / y_std)[:, None]
            saved["label_scale"] = {"mean": float(y_mean), "std": float(y_std)}
            meta.update(y_mean=float(y_mean), y_std=float(y_std), labels=labels)
        splits = {}
        for name in SPLITS:
            idx = parts[name]
            x, lengths = pad([steps[i] for i in idx], width)
            splits[name] = Split(x, y_all[idx].copy(), lengths)
        out = len(classes) if classify else 1
        return Dataset(
            splits,
            input_size=width,
            output_size=out,
            loss="xent" if classify else "mse",
            target="last",
            meta=meta,
            saved=saved,
        )

    # -- scoring -----------------------------------------------------------------------------
    def predictions(self, model, dataset: Dataset, split: str) -> np.ndarray:
        """Class indices, or numbers in the labels' own units."""
        s = dataset.splits[split]
        out = model.predict(s.x, "last", lengths=s.lengths)
        if dataset.meta["classify"]:
            return np.argmax(out, axis=-1)
        return out[:, 0].astype(float) * dataset.meta["y_std"] + dataset.meta["y_mean"]

    def metrics(self, model, dataset, split):
        m, pred = dataset.meta, self.predictions(model, dataset, split)
        if m["classify"]:
            truth, k = dataset.splits[split].y, len(m["classes"])
            result = scores.classification(pred, truth, k)
            base = scores.classification(np.full_like(truth, m["majority"]), truth, k)
            return {**result, **{f"majority_{key}": v for key, v in base.items()}}
        truth = m["labels"][m["parts"][split]]
        result = scores.regression(pred, truth)
        base = scores.regression(np.full_like(truth, m["y_mean"]), truth)
        return {**result, **{f"mean_{key}": v for key, v in base.items()}}

    def demo(self, model, dataset, rng):
        m, pred = dataset.meta, self.predictions(model, dataset, "test")
        if m["classify"]:
            truth, classes = dataset.splits["test"].y, m["classes"]
            f1 = scores.f1_per_class(pred, truth, len(classes))
            counts = {
                name: np.bincount(dataset.splits[name].y, minlength=len(classes)) for name in SPLITS
            }
            rows = [
                [
                    c,
                    int(counts["train"][i]),
                    int(counts["val"][i]),
                    int(counts["test"][i]),
                    int(np.sum(pred == i)),
                    int(np.sum((pred == i) & (truth == i))),
                    "-" if np.isnan(f1[i]) else f"{f1[i]:.3f}",
                ]
                for i, c in enumerate(classes)
            ]
            return Demo(
                f"per class: examples in each split, and the test predictions "
                f"(majority baseline: {classes[m['majority']]!r})",
                columns=["class", "train", "val", "test", "predicted", "correct", "F1"],
                rows=rows,
            )
        k = min(self.options["demo_rows"], len(pred))
        if k == 0:
            return None
        idx, s = m["parts"]["test"], dataset.splits["test"]
        rows = [
            [
                m["examples"][idx[j]].line,
                int(s.lengths[j]),
                f"{m['labels'][idx[j]]:.5g}",
                f"{pred[j]:.5g}",
                f"{m['y_mean']:.5g}",
            ]
            for j in range(k)
        ]
        return Demo(
            f"first {k} test sequences",
            columns=["line", "length", "true", "predicted", "mean baseline"],
            rows=rows,
        )

    def figure(self, model, dataset, fig):
        """Classification: the test confusion matrix (counts; rows the truth). Regression:
        predicted against true labels on the test split, with the mean baseline."""
        m, pred = dataset.meta, self.predictions(model, dataset, "test")
        ax = fig.subplots()
        if m["classify"]:
            classes, truth = m["classes"], dataset.splits["test"].y
            k = len(classes)
            counts = np.zeros((k, k), dtype=int)
            np.add.at(counts, (truth, pred), 1)
            ax.imshow(counts, cmap="Blues")
            for i in range(k):
                for j in range(k):
                    if counts[i, j]:
                        ax.text(
                            j,
                            i,
                            str(counts[i, j]),
                            ha="center",
                            va="center",
                            fontsize="small",
                            color="white" if counts[i, j] > counts.max() / 2 else "black",
                        )
            ticks = range(k)
            ax.set_xticks(ticks, classes, rotation=90 if k > 12 else 0)
            ax.set_yticks(ticks, classes)
            ax.set_xlabel("predicted class")
            ax.set_ylabel("true class")
            fig.suptitle(
                f"sequences, test split: {np.mean(pred == truth):.1%} correct "
                f"(majority class: {np.mean(truth == m['majority']):.1%})"
            )
            return "confusion"
        truth = m["labels"][m["parts"]["test"]]
        lo, hi = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1, label="perfect")
        ax.axhline(m["y_mean"], color="C1", ls=":", label="mean baseline")
        ax.plot(truth, pred, "o", color="C0", ms=3, label="test sequences")
        ax.set_xlabel("true label")
        ax.set_ylabel("predicted")
        ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
        fig.suptitle("sequences, test split: predicted vs true")
        return "predictions"
