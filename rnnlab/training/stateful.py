"""Stateful mode: truncated BPTT over long streams, carrying the hidden state across chunks.

A task opts in with ``Dataset.chunk_length = k > 0``; every split is then one continuous stream,
``x [L, 1, I]`` with targets at every step ``y [L, 1]`` (or ``[L, 1, O]`` for mse). For training,
the train stream is cut into ``batch_size`` parallel streams (``[L // B, B, I]``, stream ``b``
holding steps ``b*S .. b*S + S - 1``), walked from the start in consecutive chunks of ``k`` steps:
the final state of one chunk is the initial state of the next, gradients stop at the chunk
boundary (min-char-rnn's scheme). Evaluation walks a stream the same way, so the state is carried
through the whole split. :func:`stateful_epoch` is the reference a backend's epoch runner that
declares ``"chunk_length"`` reproduces (``Backend.epoch_runner``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import ConfigError, PluginError
from ..nn.model import loss_and_grad
from ..nn.optim import Optimizer, clip_gradients
from ..specs import Dataset, Split


def check_stream_dataset(dataset: Dataset, task_name: str) -> None:
    """A stateful dataset has targets at every step and one stream per split."""
    if dataset.target != "every":
        raise PluginError(
            f"task {task_name!r}: a stateful dataset (chunk_length > 0) needs "
            f"targets at every step, not {dataset.target!r}"
        )
    wide = [name for name, s in dataset.splits.items() if s.x.shape[1] != 1]
    if wide:
        raise PluginError(
            f"task {task_name!r}: a stateful dataset must hold one stream "
            f"(x [L, 1, I]) per split; split(s) {wide} hold more"
        )


def parallel_streams(split: Split, batch: int, chunk_length: int, *, source: str = "") -> Split:
    """Cut one stream ``[L, 1, ...]`` into ``batch`` consecutive streams ``[L // batch, batch,
    ...]``; the last ``L % batch`` steps are dropped. Views, not copies."""
    steps = split.x.shape[0] // batch
    if steps < chunk_length:
        raise ConfigError(
            f"the train stream of {split.x.shape[0]} steps, cut into {batch} "
            f"parallel streams, leaves {steps} steps per stream, fewer than one "
            f"chunk of {chunk_length}; use a smaller batch_size",
            source=source,
            table="train",
            key="batch_size",
        )

    def cut(a: np.ndarray) -> np.ndarray:
        a = a[: steps * batch, 0]  # [B*S, ...]
        return np.swapaxes(a.reshape(batch, steps, *a.shape[1:]), 0, 1)  # [S, B, ...]

    return Split(cut(split.x), cut(split.y))


def chunks(model, x: np.ndarray, chunk_length: int) -> Iterator[tuple[slice, np.ndarray]]:
    """Head outputs of consecutive chunks of ``x [L, N, I]``, the state carried from one chunk
    to the next (starting from zeros); yields ``(steps, outputs [k, N, O])``."""
    state = None
    for start in range(0, x.shape[0], chunk_length):
        steps = slice(start, min(start + chunk_length, x.shape[0]))
        out, state = model.outputs(x[steps], "every", state)
        yield steps, out


def stream_loss(model, split: Split, loss: str, chunk_length: int) -> float:
    """The mean loss per target over a stream, the state carried through it."""
    total = 0.0
    for steps, out in chunks(model, split.x, chunk_length):
        value, _ = loss_and_grad(out, split.y[steps], loss)
        total += value * (steps.stop - steps.start)
    return total / split.x.shape[0]


def stateful_epoch(
    model,
    optimizer: Optimizer,
    plan,
    split: Split,
    chunk_length: int,
    lr: float,
    dropout_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One pass of truncated BPTT over parallel streams; returns each chunk's mean loss per
    target (:func:`mean_over_chunks` gives the epoch's).

    h_0 = 0; for each chunk c: (loss_c, grads, h_c) = BPTT over chunk c from h_{c-1}; step.
    With ``model.dropout > 0`` each chunk draws its masks from ``dropout_rng``.
    """
    state, losses = None, []
    for start in range(0, split.x.shape[0], chunk_length):
        steps = slice(start, min(start + chunk_length, split.x.shape[0]))
        masks = None
        if model.cfg.dropout > 0 and model.cfg.layers > 1:
            if dropout_rng is None:
                raise ValueError("model.dropout > 0 needs a generator for its masks")
            masks = model.dropout_masks(dropout_rng, steps.stop - steps.start, split.x.shape[1])
        value, grads, state = model.loss_and_grads(
            split.x[steps], split.y[steps], plan.loss, "every", state, masks=masks
        )
        if plan.train.grad_clip != "none":
            clip_gradients(grads, plan.train.grad_clip, plan.train.grad_clip_value)
        optimizer.step(model.params, grads, lr)
        losses.append(value)
    return np.asarray(losses)


def mean_over_chunks(losses, steps: int, chunk_length: int) -> float:
    """The mean loss per target over ``steps`` steps walked in chunks of ``chunk_length`` (the
    last may be shorter), from each chunk's mean."""
    total = 0.0
    for c, value in enumerate(losses):
        total += float(value) * min(chunk_length, steps - c * chunk_length)
    return total / steps
