"""Scoring: a step is right when the whole prediction at it is right, a string when every one of
its steps is; accuracy per length band shows how far past the training lengths a model holds."""

import numpy as np

from rnnlab.plugin import Split

from .data import band_name


def step_correct(out: np.ndarray, y: np.ndarray, objective: str) -> np.ndarray:
    """``[T, N]`` bool. next: every output, thresholded at 0.5, equals the 0/1 target set (the
    usual criterion for next-symbol-set prediction); matched: the larger logit is the tag."""
    if objective == "next":
        return np.all((out > 0.5) == (y > 0.5), axis=-1)
    return np.argmax(out, axis=-1) == y


def valid_steps(split: Split) -> np.ndarray:
    """``[T, N]`` bool: True at the steps before each string's end."""
    T = split.x.shape[0]
    return np.arange(T)[:, None] < split.lengths[None, :]


def score(
    out: np.ndarray, split: Split, objective: str, length_bands: list[tuple[int, int]]
) -> dict[str, float]:
    """``acc`` (strings entirely right), ``step_acc`` (steps right, over valid steps) and
    ``acc_len_LO_HI`` for every band that holds strings of this split."""
    valid = valid_steps(split)
    ok = step_correct(out, split.y, objective)
    string_ok = np.all(ok | ~valid, axis=0)
    metrics = {"acc": float(np.mean(string_ok)), "step_acc": float(np.mean(ok[valid]))}
    for lo, hi in length_bands:
        inside = (split.lengths >= lo) & (split.lengths <= hi)
        if inside.any():
            metrics[band_name(lo, hi)] = float(np.mean(string_ok[inside]))
    return metrics


def first_error(out: np.ndarray, split: Split, objective: str) -> np.ndarray:
    """``[N]`` int: the 1-based step of each string's first wrong prediction, 0 when none."""
    ok = step_correct(out, split.y, objective) | ~valid_steps(split)
    wrong = ~ok
    return np.where(wrong.any(axis=0), np.argmax(wrong, axis=0) + 1, 0)
