"""From character indices to splits: by position in the text (train, then validation, then test),
cut before windowing, so no window or stream crosses a split boundary.

Inputs are one-hot characters, targets the next character at every step:
    x_t = onehot(c_t),  y_t = c_{t+1}.
"""

from __future__ import annotations

import numpy as np

from rnnlab.plugin import ConfigError, Split

from .vocab import one_hot

MAX_ONE_HOT_BYTES = 2 * 2**30  # windows whose float64 one-hot inputs exceed this are refused


def segments(
    ids: np.ndarray, train_fraction: float, val_fraction: float, min_length: int
) -> dict[str, np.ndarray]:
    """The text cut by position; every part must hold at least ``min_length`` characters."""
    if train_fraction + val_fraction >= 1:
        raise ConfigError(
            f"train_fraction + val_fraction must be < 1 to leave a test split, "
            f"got {train_fraction} + {val_fraction}",
            table="task",
            key="val_fraction",
        )
    n = len(ids)
    a = int(round(n * train_fraction))
    b = a + int(round(n * val_fraction))
    parts = {"train": ids[:a], "val": ids[a:b], "test": ids[b:]}
    for name, part in parts.items():
        if len(part) < min_length:
            raise ConfigError(
                f"the {name} split holds {len(part)} characters of the "
                f"{n}-character corpus, fewer than the {min_length} needed; use a "
                f"longer corpus (or `repeat`) or a smaller window",
                table="task",
                key="window",
            )
    return parts


def windows(ids: np.ndarray, window: int, stride: int, vocab_size: int) -> Split:
    """Windows of ``window`` characters starting every ``stride``: x [T, N, V], y [T, N]."""
    starts = np.arange(0, len(ids) - window, stride)
    if starts.size * window * vocab_size * 8 > MAX_ONE_HOT_BYTES:
        raise ConfigError(
            f"{starts.size} windows of {window} one-hot characters would take "
            f"{starts.size * window * vocab_size * 8 / 2**30:.1f} GiB; use a larger "
            f'stride or mode = "stateful"',
            table="task",
            key="stride",
        )
    idx = np.arange(window)[:, None] + starts[None, :]  # [T, N]
    return Split(one_hot(ids[idx], vocab_size), ids[idx + 1])


def stream(ids: np.ndarray, vocab_size: int) -> Split:
    """The whole part as one stream: x [L, 1, V], y [L, 1] with L = len(ids) - 1."""
    return Split(one_hot(ids[:-1, None], vocab_size), ids[1:, None])
