"""Scores of a character model on one split, and the unigram baseline they are compared with.

    nats/char  H = -1/N sum_t ln p(y_t | x_<=t)       bits/char = H / ln 2
    perplexity = e^H                                  accuracy  = 1/N sum_t [argmax p_t = y_t]

Unigram baseline: p(c) = (n_train(c) + 1) / (N_train + V), character counts of the train part of
the text with add-one smoothing over the vocabulary (so a character absent from the train part
still has a finite cost); its bits/char are averaged over the same targets as the model's.
"""

from __future__ import annotations

import math

import numpy as np

from rnnlab.plugin import chunks, log_softmax

WINDOW_BATCH = 1024  # windows scored per forward pass, to bound memory


def outputs(model, x: np.ndarray, chunk_length: int):
    """Logits ``[k, N, V]`` of the whole split, piece by piece, with where each piece lies:
    consecutive chunks with the state carried (stateful), or groups of windows."""
    if chunk_length:
        for steps, out in chunks(model, x, chunk_length):
            yield (steps, slice(None)), out
        return
    for start in range(0, x.shape[1], WINDOW_BATCH):
        cols = slice(start, start + WINDOW_BATCH)
        yield (slice(None), cols), model.outputs(x[:, cols], "every")[0]


def model_scores(model, x: np.ndarray, y: np.ndarray, chunk_length: int) -> dict[str, float]:
    """Cross-entropy (nats, bits), perplexity and next-character accuracy on every target."""
    nats, correct = 0.0, 0
    for where, out in outputs(model, x, chunk_length):
        z = out.astype(np.float64)
        logp = log_softmax(z)
        target = y[where]
        nats -= float(np.take_along_axis(logp, target[..., None], axis=-1).sum())
        correct += int((z.argmax(axis=-1) == target).sum())
    h = nats / y.size
    return {
        "nats_per_char": h,
        "bits_per_char": h / math.log(2),
        "perplexity": math.exp(h),
        "accuracy": correct / y.size,
    }


def unigram(train_ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Add-one smoothed character probabilities from the train part."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64)
    return (counts + 1.0) / (counts.sum() + vocab_size)


def unigram_bits(p: np.ndarray, y: np.ndarray) -> float:
    """Mean -log2 p(y) over the targets."""
    return float(-np.log2(p[y]).mean())
