"""The task's figure: how surprised the trained model is by each character of a test excerpt.

    loss_t = -log2 softmax(z_t)[y_t]   (bits)

drawn as one bar per character, with the excerpt's mean and the unigram baseline's mean as lines.
"""

from __future__ import annotations

import numpy as np

from rnnlab.plugin import log_softmax

EXCERPT = 80  # characters shown

SHOWN = {"\n": "⏎", " ": "␣", "\t": "⇥"}


def excerpt_bits(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-character loss in bits and the target indices of the test split's first characters
    (a stream's opening, or its first window), read from a zero state as the model was scored."""
    test = dataset.splits["test"]
    x, y = test.x[:EXCERPT, :1], test.y[:EXCERPT, :1]
    z = model.outputs(x, "every")[0][:, 0].astype(np.float64)
    logp = log_softmax(z)
    target = y[:, 0]
    return -logp[np.arange(len(target)), target] / np.log(2), target


def draw(fig, model, dataset) -> None:
    bits, target = excerpt_bits(model, dataset)
    vocab, unigram = dataset.meta["vocab"], dataset.meta["unigram"]
    chars = [SHOWN.get(c, c) for c in vocab.decode(target)]
    base = -np.log2(unigram[target])
    ax = fig.add_subplot()
    steps = np.arange(len(bits))
    ax.bar(steps, bits, width=0.85, color="C0", label="model, per character")
    ax.axhline(
        bits.mean(), color="C0", ls="--", lw=1.2, label=f"model mean {bits.mean():.2f} bits/char"
    )
    ax.axhline(
        base.mean(),
        color="C3",
        ls=":",
        lw=1.5,
        label=f"unigram baseline {base.mean():.2f} bits/char",
    )
    ax.set_xticks(steps, chars, fontsize=7, family="monospace")
    ax.set_xlim(-0.7, len(bits) - 0.3)
    ax.set_xlabel("next character (test excerpt)")
    ax.set_ylabel("loss (bits)")
    ax.set_title(f"chargen, test split: per-character loss of the first {len(bits)} characters")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
