"""The task's figure: how often each position of the recalled symbols is right, against chance."""

import numpy as np


def draw(fig, pred: np.ndarray, y: np.ndarray, recall: int, symbols: int) -> None:
    """``pred``, ``y``: ``[T + 2K, N]`` predicted and target classes of the test split."""
    right = (pred[-recall:] == y[-recall:]).mean(axis=1)
    ax = fig.subplots()
    positions = np.arange(1, recall + 1)
    ax.bar(positions, right, color="C0", label="test accuracy")
    ax.axhline(1 / symbols, color="C3", ls="--", label=f"chance (1/{symbols})")
    ax.set_ylim(0, 1.03)
    ax.set_xticks(positions)
    ax.set_xlabel("position in the recalled sequence")
    ax.set_ylabel("symbols right")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
