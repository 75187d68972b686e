"""Forecast errors and the baselines every result is read against, in the data's own units.

Arrays are ``[windows, horizon, targets]``. Every score is a mean over windows, steps ahead and
targets; MASE divides each target's mean absolute error by that target's in-sample naive error on
the train split (seasonal when ``season > 1``, Hyndman & Koehler 2006) before averaging.
"""

from __future__ import annotations

import numpy as np

BASELINES = ("naive", "seasonal_naive")


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """Mean |y[t] - y[t - m]| over the train split, per target (``train [rows, targets]``)."""
    return np.mean(np.abs(train[season:] - train[:-season]), axis=0)


def errors(pred: np.ndarray, truth: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """mae, rmse, smape (percent, 0..200, a 0/0 term counts 0) and mase."""
    e = pred - truth
    denom = np.abs(truth) + np.abs(pred)
    ratio = np.divide(2 * np.abs(e), denom, out=np.zeros_like(denom), where=denom > 0)
    per_target = np.mean(np.abs(e), axis=(0, 1))
    return {
        "mae": float(np.mean(np.abs(e))),
        "rmse": float(np.sqrt(np.mean(e * e))),
        "smape": float(100 * np.mean(ratio)),
        "mase": float(np.mean(per_target / scale)),
    }


def naive(values: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    """The last value before each window's first forecast step, repeated over the horizon:
    y^[s + h] = y[s - 1]. ``values [rows, targets]``; ``starts`` the first forecast rows."""
    return np.repeat(values[starts - 1][:, None, :], horizon, axis=1)


def seasonal_naive(values: np.ndarray, starts: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season earlier (as many whole seasons back as the step needs):
    y^[s + h] = y[s + h - m * ceil((h + 1) / m)] for h = 0 .. horizon - 1."""
    h = np.arange(horizon)
    back = season * -(-(h + 1) // season)
    return values[starts[:, None] + h[None, :] - back[None, :]]


def seasonal_reach(horizon: int, season: int) -> int:
    """How many past rows the seasonal-naive forecast reads (so the window must hold them)."""
    return season * -(-horizon // season)
