"""What the fused epoch's compiled code is handed: settings, parameters, data and scratch as
named tuples of scalars and arrays (numba compiles them like positional arguments, so one
epoch call takes a handful of named structures instead of two dozen arguments), and the layout
of the flat parameter vector.

Scratch is per chunk of batch rows (leading axis: the chunk), so that chunks can run on
different threads with private buffers. Per-cell buffers (``bsum``, ``gates``, ``cs``, ``hn``,
and ``diagonal``'s for the cells with an elementwise recurrence) are not in ``Scratch``: they
are passed to the kernels as separate arguments, None for the cells that do not use them, so
that each compiled signature holds one cell's code only (numba prunes ``if arg is not None``
branches at compile time).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from rnnlab.plugin import HEAD_KEYS, cell_spec, param_name

from .lru import ACTIVATIONS

# Everything about the plan the kernels branch on or compute with (scalars only): the model's
# part (model_settings), shared by the fused epoch and the compiled forward, then the training's
Settings = namedtuple(
    "Settings",
    [
        "cell",  # CELLS[cell]: RNN, LSTM, GRU, MINGRU, MINLSTM, INDRNN or LRU
        "layers",
        "directions",  # 1, or 2 (bidirectional)
        "hidden",
        "gates",  # gate blocks per layer: 1 (rnn), 4 (lstm), 3 (gru), the cell spec's
        "relu",
        "act",  # the lru's readout activation (lru.ACTIVATIONS)
        "every",  # target "every" (else "last")
        "n_out",
        "batch",
        "chunk_rows",  # batch rows per chunk (fixed by the problem's size alone: chunk_rows)
        "chunk_length",  # stateful epochs: steps per chunk of the streams (0: windowed epochs)
        "xent",
        "lengths",
        "clip",  # CLIPS[grad_clip]: NO_CLIP, CLIP_NORM or CLIP_VALUE
        "optimizer",  # OPTIMIZERS[optimizer]: SGD, ADAM or ADAGRAD
        "clip_value",
        "momentum",
        "beta1",
        "beta2",
        "eps",
        "weight_decay",
    ],
)
# the codes the kernels branch on (numba compiles module-level ints as constants)
RNN, LSTM, GRU, MINGRU, MINLSTM, INDRNN, LRU = range(7)
CELLS = {
    "rnn": RNN,
    "lstm": LSTM,
    "gru": GRU,
    "mingru": MINGRU,
    "minlstm": MINLSTM,
    "indrnn": INDRNN,
    "lru": LRU,
}
NO_CLIP, CLIP_NORM, CLIP_VALUE = 0, 1, 2
CLIPS = {"none": NO_CLIP, "norm": CLIP_NORM, "value": CLIP_VALUE}
SGD, ADAM, ADAGRAD = 0, 1, 2
OPTIMIZERS = {"sgd": SGD, "adam": ADAM, "adagrad": ADAGRAD}


def model_settings(cfg, **rest) -> Settings:
    """The settings of the model ``cfg`` (its [model] table) and ``rest`` (0 where not given)."""
    fields = dict.fromkeys(Settings._fields, 0)
    spec = cell_spec(cfg.cell)
    # as rnnlab.nn.model.Model: a value the cell does not accept gives the cell's default
    act = cfg.nonlinearity
    act = act if act in spec.nonlinearities else spec.default_nonlinearity
    fields.update(
        cell=CELLS[cfg.cell],
        layers=cfg.layers,
        directions=2 if cfg.bidirectional else 1,
        hidden=cfg.hidden_size,
        gates=spec.gates,
        relu=act == "relu",
        act=ACTIVATIONS.get(act, 0),
    )
    fields.update(rest)
    return Settings(**fields)


def optimizer_settings(train) -> dict:
    """The clipping's and the optimizer's settings, from ``train`` (the [train] table)."""
    return dict(
        clip=CLIPS[train.grad_clip],
        optimizer=OPTIMIZERS[train.optimizer],
        clip_value=float(train.grad_clip_value),
        momentum=float(train.momentum),
        beta1=float(train.beta1),
        beta2=float(train.beta2),
        eps=float(train.eps),
        weight_decay=float(train.weight_decay),
    )


# theta: every parameter in one flat vector; layout[layer * directions + direction] = offsets
# of the layer's tensors in the cell spec's order (rnn, lstm, gru: W_ih, W_hh, b_ih, b_hh),
# then its fan_in and its offset in wT (rnn, lstm, gru: W_hh^T then W_ih^T, the first
# refreshed every batch, the second unused; the other cells keep nothing there);
# head = offsets of head.weight, head.bias in theta and of head.weight^T in wT
Net = namedtuple("Net", ["theta", "layout", "head", "wT"])
# optimizer slots (sa, sb: momentum / exp_avg, exp_avg_sq / sum), steps taken before this epoch
Slots = namedtuple("Slots", ["sa", "sb", "steps", "lr"])
# x [T, N, I] time-major; targets row-major yf [N, Ty, O] (mse) or yi [N, Ty] (xent), Ty = 1
# for target "last"; order: the epoch's rows, each batch longest first when there are lengths
Data = namedtuple("Data", ["x", "yf", "yi", "order", "lens"])
# per chunk c (rows R = chunk_rows, T = the longest sequence): xb [c, T, R, I] its inputs;
# hs [c, L*D, T, R, H] (a reverse direction's in its own time); dh, dh2 [c, T, R, H] dL/dh
# from above and dL/d(layer input);
# wide [c, 2, R, G*H], narrow [c, 2, R, H] per-step scratch of the cells; state0 [c, L*D, 2, R, H]
# each direction's initial (h, c): zeros, or in a stateful epoch the state the previous chunk of
# steps ended in; active [c, T] live rows per step; out [c, O]; g [c, P] gradients; loss [c]
# summed loss; outs [c, T, R, O] the head's outputs (target every); hv, dv [c, D*H] the
# head's input and its gradient (bidirectional, target last)
Scratch = namedtuple(
    "Scratch",
    [
        "xb", "hs", "dh", "dh2", "wide", "narrow", "state0", "active", "out", "g", "loss",
        "outs", "hv", "dv",
    ],
)  # fmt: skip
# what every kernel of the fused epoch reads: settings, parameters, data and scratch
Shared = namedtuple("Shared", ["s", "net", "data", "buf"])
# one chunk of a batch: its index c (its scratch), its rows (indices into the rows of data.x)
# and their position pos in the epoch's order, the steps t0 .. t0 + T - 1, whether the initial
# state is zeros (h0_zero), and coef, the loss gradient's scale (2 / count or 1 / count); a
# whole batch is the chunk c = 0 of all its rows, before it is split
Chunk = namedtuple("Chunk", ["c", "rows", "pos", "t0", "T", "h0_zero", "coef"])
# the reverse direction's scratch, per chunk c: its inputs (steps reversed within each row's
# length) rx [c, T, R, I] (layer 0) and rmid [c, T, R, 2H]; dcat [c, 2, T, R, 2H]
# dL/d[forward ; reverse] outputs of a layer and of the one below; dxr [c, T, R, 2H] dL/d(input)
# of the reverse direction
Bidirectional = namedtuple("Bidirectional", ["rx", "rmid", "dcat", "dxr"])

MAX_CHUNKS = 4  # a batch splits into at most this many chunks, whatever the thread count
# multiply-adds per batch (B T G H^2 L) per chunk: a batch below 2 CHUNK_WORK is one chunk.
# Measured (benchmarks/threads.py, 2-core Xeon, one core free), rnn T=10 H=32, two threads on
# chunks against one thread as this rule lays it out: 1.13x at 41k multiply-adds per batch,
# 1.08x at 82k, 1.31x at 164k, 1.51x at 328k, 1.92x at 1.3M. The threshold sits above the
# crossover (~50-80k): the thread count is chosen when an epoch starts, and a core taken
# during a small epoch cost 20-100x (each batch's parallel region waits for the OS).
CHUNK_WORK = 150_000


def batch_work(batch_size: int, T: int, gates: int, hidden: int, layers: int) -> int:
    """Multiply-adds of one batch's recurrent products (forward), the measure of its size."""
    return batch_size * T * gates * hidden * hidden * layers


def chunk_rows(batch_size: int, work: int) -> int:
    """Rows per chunk, from the problem's size only (never the thread count, so results are
    the same bytes on any): one chunk per CHUNK_WORK of the batch's ``work``, at most
    MAX_CHUNKS, rows a multiple of 4 (the kernels' row block); the whole batch when it is
    smaller than two chunks' work (each chunk costs a gradient buffer and its reduction, and
    a second thread does not pay there)."""
    chunks = min(MAX_CHUNKS, work // CHUNK_WORK)
    if chunks < 2:
        return batch_size
    per = -(-batch_size // chunks)
    return min(batch_size, -(-per // 4) * 4)


ALIGN = 64  # bytes: where every tensor of theta and wT starts (aligned_zeros, pack_layout)


def aligned_zeros(shape, dtype) -> np.ndarray:
    """A C-contiguous array of zeros starting at an ALIGN-byte boundary."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.zeros(n + ALIGN // dtype.itemsize, dtype)
    skip = (-raw.ctypes.data % ALIGN) // dtype.itemsize
    return raw[skip : skip + n].reshape(shape)


def input_size(params: dict[str, np.ndarray], spec, layer: int = 0, reverse=False) -> int:
    """Layer ``layer``'s input size, read from its first tensor whose shape depends on it."""
    for p in spec.parameters:
        one, two = p.shape(1, 1), p.shape(2, 1)
        for axis, (a, b) in enumerate(zip(one, two, strict=True)):
            if a != b:
                return params[param_name(p.key, layer, reverse=reverse)].shape[axis]
    raise ValueError(f"cell {spec.name!r}: no tensor's shape depends on the input size")


def transposed_size(spec, hidden: int, fan_in: int) -> tuple[int, int]:
    """The sizes of a layer's two blocks of wT: W_hh^T and W_ih^T for rnn, lstm and gru (the
    cells whose recurrence is a matrix product), none for the others."""
    if spec.params is not None:
        return 0, 0
    return hidden * spec.gates * hidden, fan_in * spec.gates * hidden


def pack_layout(
    params: dict[str, np.ndarray],
    spec,
    layers: int,
    hidden: int,
    directions: int = 1,
    aligned: bool = True,
):
    """Offsets of every tensor in the flat vector (in ``params`` order), ``layout`` and
    ``head`` as described at ``Net``, and the sizes of theta and wT, for cell ``spec``
    (rnnlab.cells.CellSpec). A reverse direction's parameters are PyTorch's ``..._reverse``
    (``param_name(key, layer, reverse=True)``).

    Every tensor starts at a multiple of ``ALIGN // itemsize`` elements (the gaps hold zeros
    that nothing reads; their gradients stay 0), and so do the sizes: in buffers from
    aligned_zeros every matrix starts on a cache line. Why: a batch-1 product streams its
    weight matrix, rows of H = 100 float64 (800 bytes, not a whole number of 64-byte lines),
    from L2 at every step; from a line boundary it took 0.81 us at min-char-rnn's sizes, from
    48 bytes past one (where numpy's allocation had put W_hh) 0.98. ``aligned=False``: no gaps,
    each tensor right after the one before (the compiled forward's per-call copy, one
    ``np.concatenate``: a third of the Python time of a one-row call)."""

    align = ALIGN // next(iter(params.values())).dtype.itemsize if aligned else 1

    def up(n):
        return -(-n // align) * align

    offsets, at = {}, 0
    for name, p in params.items():
        offsets[name] = at
        at = up(at + p.size)
    keys = spec.keys
    layout = np.zeros((layers * directions, len(keys) + 2), dtype=np.int64)
    at_t = 0
    for layer in range(layers):
        for d in range(directions):
            names = [param_name(key, layer, reverse=d == 1) for key in keys]
            fan_in = input_size(params, spec, layer, reverse=d == 1)
            layout[layer * directions + d] = [offsets[n] for n in names] + [fan_in, at_t]
            rec, inp = transposed_size(spec, hidden, fan_in)
            at_t = up(at_t + up(rec) + inp)
    head = np.array([offsets[param_name(key)] for key in HEAD_KEYS] + [at_t], dtype=np.int64)
    return offsets, layout, head, at, up(at_t + params[param_name("weight")].size)
