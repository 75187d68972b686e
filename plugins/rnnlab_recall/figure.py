"""The task's figure: queries answered right against how far back their pair was shown."""

import numpy as np

BINS = 10  # distance bins at most


def draw(fig, right: np.ndarray, distance: np.ndarray, chance: float) -> None:
    """``right``, ``distance``: ``[N, D]`` whether each query is answered right, and the steps
    from its key in the context to it."""
    lo, hi = int(distance.min()), int(distance.max())
    edges = np.unique(np.linspace(lo, hi + 1, BINS + 1).round().astype(int))
    which = np.clip(np.searchsorted(edges, distance, side="right") - 1, 0, len(edges) - 2)
    centres, acc, counts = [], [], []
    for b in range(len(edges) - 1):
        inside = which == b
        if inside.any():
            centres.append((edges[b] + edges[b + 1] - 1) / 2)
            acc.append(right[inside].mean())
            counts.append(int(inside.sum()))
    ax = fig.subplots()
    ax.plot(centres, acc, "o-", color="C0", label="test accuracy")
    for c, a, k in zip(centres, acc, counts, strict=True):
        ax.annotate(str(k), (c, a), textcoords="offset points", xytext=(0, 6), fontsize=7)
    ax.axhline(chance, color="C3", ls="--", label=f"chance ({chance:.3g})")
    ax.set_ylim(-0.03, 1.08)
    ax.set_xlabel("steps between a key-value pair and its query (queries per bin marked)")
    ax.set_ylabel("queries answered right")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
