"""Scores of a sequence classifier or regressor, and the baselines they are read against."""

from __future__ import annotations

import numpy as np


def f1_per_class(pred: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """F1 of every class index (NaN for a class neither in ``truth`` nor in ``pred``)."""
    out = np.full(classes, np.nan)
    for c in range(classes):
        tp = np.sum((pred == c) & (truth == c))
        n_pred, n_true = np.sum(pred == c), np.sum(truth == c)
        if n_pred or n_true:
            out[c] = 2 * tp / (n_pred + n_true)
    return out


def classification(pred: np.ndarray, truth: np.ndarray, classes: int) -> dict[str, float]:
    """accuracy and macro-F1 (the mean F1 over classes in the truth or the predictions, as
    scikit-learn's f1_score(average="macro") counts them)."""
    return {
        "accuracy": float(np.mean(pred == truth)),
        "macro_f1": float(np.nanmean(f1_per_class(pred, truth, classes))),
    }


def regression(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    e = pred - truth
    return {"mse": float(np.mean(e * e)), "mae": float(np.mean(np.abs(e)))}
