"""The task's figure: the share of test strings right at each length, the training lengths
shaded, so where length generalisation ends is visible at a glance."""

import numpy as np

from .metrics import first_error


def draw(
    fig,
    out: np.ndarray,
    split,
    objective: str,
    train_range: tuple[int, int],
    length_bands: list[tuple[int, int]],
) -> None:
    """``out``: the model's outputs on the test ``split``."""
    right = first_error(out, split, objective) == 0
    lengths = np.unique(split.lengths)
    per_length = [right[split.lengths == n].mean() for n in lengths]
    ax = fig.subplots()
    lo, hi = train_range
    ax.axvspan(lo - 0.5, hi + 0.5, color="0.9", label=f"training lengths {lo}-{hi}")
    ax.plot(lengths, per_length, "o", ms=3, color="C0", alpha=0.6, label="one length")
    for i, (a, b) in enumerate(length_bands):
        inside = (split.lengths >= a) & (split.lengths <= b)
        if inside.any():
            ax.hlines(
                right[inside].mean(),
                a - 0.5,
                b + 0.5,
                color="C3",
                lw=2,
                label="band (acc_len_LO_HI)" if i == 0 else None,
            )
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("string length")
    ax.set_ylabel("test strings entirely right")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
