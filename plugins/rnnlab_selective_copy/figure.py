"""The task's figure: recalled tokens right against how far back they were shown."""

import numpy as np

BINS = 10  # distance bins at most


def draw(fig, right: np.ndarray, distance: np.ndarray, symbols: int) -> None:
    """``right``, ``distance``: ``[n, M]`` whether each recalled token is right, and how many
    steps separate it from its slot."""
    lo, hi = int(distance.min()), int(distance.max())
    edges = np.unique(np.linspace(lo, hi + 1, BINS + 1).round().astype(int))
    which = np.clip(np.searchsorted(edges, distance, side="right") - 1, 0, len(edges) - 2)
    centres, acc = [], []
    for b in range(len(edges) - 1):
        inside = which == b
        if inside.any():
            centres.append((edges[b] + edges[b + 1] - 1) / 2)
            acc.append(right[inside].mean())
    ax = fig.subplots()
    ax.plot(centres, acc, "o-", color="C0", label="test accuracy")
    ax.axhline(1 / symbols, color="C3", ls="--", label=f"chance (1/{symbols})")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("steps between a token and its recall")
    ax.set_ylabel("recalled tokens right")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
