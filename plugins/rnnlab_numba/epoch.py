"""A whole training epoch in one compiled call: minibatches in the given order, forward, loss,
BPTT, gradient clipping and the optimizer step, exactly as ``rnnlab.train.reference_epoch`` and
``rnnlab.optim`` do it.

Why it is shaped like this: at the article's sizes one batch's arithmetic takes tens of
microseconds, so Python work around a batch (dict handling, one NumPy call per parameter in the
optimizer) would cost as much as the kernels. Parameters, gradients and optimizer slots are
packed into flat vectors (``layout`` gives every tensor's offset), the scratch buffers are
allocated once per runner, and each batch's sequences run as one block of rows.

Variable length (``lengths``): each batch's rows are sorted longest first (lengths.py), so step
t runs on the live prefix of rows only and a batch stops at its longest sequence: the cost
follows the lengths, not the padding. The head reads each sequence's own last step ("last") or
its valid steps ("every", the loss a mean over valid steps); BPTT starts at each sequence's end.

One thread: threads were tried (one parallel region per batch, private gradient buffers per
thread); on the shared 2-core machine this was built on they made epochs 1.5-50x slower, and the
parallel kernel took longer to compile, so they are left out.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from rnnlab.plugin import HEAD_KEYS, LAYER_KEYS, Optimizer, Shape, init_params, param_name

from . import lengths as packing
from .rnn import OPTS, block_backward, block_forward

EXACT = {"error_model": "numpy", "cache": True}  # the optimizer rounds exactly like NumPy

# flags[...] indices
(
    F_LAYERS,
    F_HIDDEN,
    F_INPUT,
    F_OUTPUT,
    F_BATCH,
    F_RELU,
    F_XENT,
    F_EVERY,
    F_CLIP,
    F_OPT,
    F_LENGTHS,
) = range(11)
# hyper[...] indices
P_CLIP, P_MOMENTUM, P_BETA1, P_BETA2, P_EPS, P_DECAY = range(6)
CLIPS = {"none": 0, "norm": 1, "value": 2}
OPTIMIZERS = {"sgd": 0, "adam": 1, "adagrad": 2}


# Every plan feature (``rnnlab.train.EpochPlan.features``) the fused epoch implements; the core
# runs any plan using something else (another cell, a feature added later) through its own loop.
FEATURES = frozenset(
    {
        "cell=rnn",
        "nonlinearity=tanh",
        "nonlinearity=relu",
        "dtype=float64",
        "dtype=float32",
        "hidden_size",
        "layers",
        "batch_size",
        "learning_rate",
        "momentum",
        "beta1",
        "beta2",
        "eps",
        "weight_decay",
        "grad_clip_value",
        "loss=mse",
        "loss=xent",
        "target=last",
        "target=every",
        "lengths",
        *(f"grad_clip={name}" for name in CLIPS),
        *(f"optimizer={name}" for name in OPTIMIZERS),
    }
)


# -- kernels ---------------------------------------------------------------------------------
@njit(**OPTS)
def transpose_weights(theta, layout, H, wT, bsum):
    """Per layer: W_ih^T and W_hh^T into ``wT`` (at ``layout[layer, 5]``, for the backward
    pass), and b_ih + b_hh into ``bsum``."""
    for layer in range(layout.shape[0]):
        o_ih, o_hh, o_bih, o_bhh, fan_in, o_t = layout[layer]
        WihT = wT[o_t : o_t + fan_in * H].reshape((fan_in, H))
        WhhT = wT[o_t + fan_in * H : o_t + fan_in * H + H * H].reshape((H, H))
        Wih = theta[o_ih : o_ih + H * fan_in].reshape((H, fan_in))
        Whh = theta[o_hh : o_hh + H * H].reshape((H, H))
        WihT[:, :] = Wih.T
        WhhT[:, :] = Whh.T
        for j in range(H):
            bsum[layer, j] = theta[o_bih + j] + theta[o_bhh + j]


@njit(**OPTS)
def head_loss(n, r, T, top, theta, head, flags, yf, yi, coef, out, dh, g):
    """Head y = h W^T + b on row r's target steps, the loss summed over them, and the backward
    pass: g[W] += dout^T h, g[b] += dout, dh[r] = dout W. ``n`` is the row's sequence index and
    ``T`` its length: the targets are its steps ``0..T-1`` ("every") or step ``T-1``."""
    H, n_out = flags[F_HIDDEN], flags[F_OUTPUT]
    xent, every = flags[F_XENT] == 1, flags[F_EVERY] == 1
    Wh = theta[head[0] : head[0] + n_out * H].reshape((n_out, H))
    gWh = g[head[0] : head[0] + n_out * H].reshape((n_out, H))
    loss = 0.0
    for s in range(T if every else 1):
        t = s if every else T - 1
        h = top[r, t]
        for o in range(n_out):
            acc = theta[head[1] + o] * 0.0
            for k in range(H):
                acc += Wh[o, k] * h[k]
            out[o] = acc + theta[head[1] + o]
        if xent:  # -log softmax(out)[y];  dout = (softmax(out) - onehot(y)) / count
            m = out[0]
            for o in range(1, n_out):
                m = max(m, out[o])
            total = 0.0
            for o in range(n_out):
                total += math.exp(out[o] - m)
            lse = math.log(total)
            label = yi[n, s]
            loss -= out[label] - m - lse
            for o in range(n_out):
                out[o] = math.exp(out[o] - m - lse) * coef
            out[label] -= coef
        else:  # (out - y)^2;  dout = 2 (out - y) / count
            for o in range(n_out):
                diff = out[o] - yf[n, s, o]
                loss += diff * diff
                out[o] = coef * diff
        d_h = dh[r, t]
        for o in range(n_out):
            d = out[o]
            g[head[1] + o] += d
            for k in range(H):
                gWh[o, k] += d * h[k]
                d_h[k] += d * Wh[o, k]
    return loss


@njit(**OPTS)
def block_loss_grad(
    rows,
    lens,
    active,
    theta,
    layout,
    head,
    flags,
    x,
    yf,
    yi,
    coef,
    wT,
    bsum,
    xb,
    hs,
    dh,
    dh2,
    dz,
    carry,
    out,
    g,
):
    """Forward, loss and BPTT of the sequences ``rows`` (indices into ``x [N, T, I]``); add
    their gradients to ``g``; return their loss summed over targets (the caller divides by the
    batch's target count; ``coef`` is the gradient's scale, 2 / count (mse) or 1 / count).
    With lengths (``lens [N]``) the rows are sorted longest first and step t runs on the rows
    ``[:active[t]]``; without, every row runs every step."""
    L, H, R = flags[F_LAYERS], flags[F_HIDDEN], rows.size
    relu, ragged = flags[F_RELU] == 1, flags[F_LENGTHS] == 1
    T = lens[rows[0]] if ragged else x.shape[1]  # the batch's longest sequence
    xb, dh, dh2, dz, carry = xb[:R], dh[:R], dh2[:R], dz[:R], carry[:R]
    for r in range(R):
        xb[r, :T] = x[rows[r], :T]
    for layer in range(L):  # forward through the stack
        o_ih, o_hh, _, _, fan_in, _ = layout[layer]
        Wih = theta[o_ih : o_ih + H * fan_in].reshape((H, fan_in))
        Whh = theta[o_hh : o_hh + H * H].reshape((H, H))
        inp = xb if layer == 0 else hs[layer - 1, :R]
        block_forward(Wih, Whh, bsum[layer], inp, carry, True, relu, hs[layer, :R], active)
    dh[:, :T, :] = 0.0
    loss = 0.0
    for r in range(R):
        n = rows[r]
        loss += head_loss(
            n, r, lens[n] if ragged else T, hs[L - 1], theta, head, flags, yf, yi, coef, out, dh, g
        )
    for layer in range(L - 1, -1, -1):  # BPTT down the stack; dh2 gets dL/d(layer input)
        o_ih, o_hh, o_bih, _, fan_in, o_t = layout[layer]
        WihT = wT[o_t : o_t + fan_in * H].reshape((fan_in, H))
        WhhT = wT[o_t + fan_in * H : o_t + fan_in * H + H * H].reshape((H, H))
        gWih = g[o_ih : o_ih + H * fan_in].reshape((H, fan_in))
        gWhh = g[o_hh : o_hh + H * H].reshape((H, H))
        inp = xb if layer == 0 else hs[layer - 1, :R]
        block_backward(
            WihT,
            WhhT,
            inp,
            hs[layer, :R],
            carry,
            True,
            relu,
            dh,
            layer > 0,
            dh2,
            gWih,
            gWhh,
            g[o_bih : o_bih + H],
            dz,
            carry,
            active,
        )
        dh, dh2 = dh2, dh
    return loss


@njit(**EXACT)
def finish_batch(theta, g, sa, sb, step, lr, layout, flags, hyper):
    """b_hh's gradient (equal to b_ih's), clipping, then the optimizer step ``step`` (1-based)."""
    H = flags[F_HIDDEN]
    for layer in range(layout.shape[0]):
        g[layout[layer, 3] : layout[layer, 3] + H] = g[layout[layer, 2] : layout[layer, 2] + H]
    clip = flags[F_CLIP]
    value = hyper[P_CLIP]
    if clip == 1:  # g *= value / (||g|| + 1e-6) when that is < 1
        sq = 0.0
        for i in range(g.size):
            sq += g[i] * g[i]
        c = value / (math.sqrt(sq) + 1e-6)
        if c < 1.0:
            for i in range(g.size):
                g[i] *= c
    elif clip == 2:  # g = clip(g, -value, value)
        for i in range(g.size):
            g[i] = min(max(g[i], -value), value)
    kind = flags[F_OPT]
    momentum, b1, b2 = hyper[P_MOMENTUM], hyper[P_BETA1], hyper[P_BETA2]
    eps, decay = hyper[P_EPS], hyper[P_DECAY]
    if kind == 1:
        corr1 = lr / (1 - b1**step)
        corr2 = math.sqrt(1 - b2**step)
    for i in range(theta.size):
        gi = g[i] + decay * theta[i] if decay != 0.0 else g[i]  # g += weight_decay * p
        if kind == 0:  # sgd: buf = momentum * buf + g;  p -= lr * buf
            if momentum != 0.0:
                sa[i] = sa[i] * momentum + gi
                gi = sa[i]
            theta[i] -= lr * gi
        elif kind == 1:  # adam: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
            sa[i] = sa[i] * b1 + (1 - b1) * gi
            sb[i] = sb[i] * b2 + (1 - b2) * (gi * gi)
            theta[i] -= corr1 * (sa[i] / (math.sqrt(sb[i]) / corr2 + eps))
        else:  # adagrad: sum += g^2;  p -= lr * g / (sqrt(sum) + eps)
            sa[i] += gi * gi
            theta[i] -= lr * (gi / (math.sqrt(sa[i]) + eps))


@njit(**OPTS)
def batch_count(rows, flags, T):
    """How many loss terms the mean runs over, and the gradient's scale for each. ``T`` is the
    number of target steps of the batch (rows x sequence length, or the sum of the lengths)."""
    targets = T if flags[F_EVERY] == 1 else rows
    if flags[F_XENT] == 1:
        return targets, 1.0 / targets
    return targets * flags[F_OUTPUT], 2.0 / (targets * flags[F_OUTPUT])


@njit(**OPTS)
def live_rows(rows, lens, flags, T, active):
    """``active[t]``: how many of the batch's rows take part in step t (rows sorted longest
    first when there are lengths); returns the batch's number of valid steps."""
    if flags[F_LENGTHS] == 0:
        active[:] = rows.size
        return rows.size * T
    active[:] = 0
    steps = 0
    for r in range(rows.size):
        n = lens[rows[r]]
        steps += n
        for t in range(n):
            active[t] += 1
    return steps


@njit(**OPTS)
def epoch(
    theta,
    sa,
    sb,
    step0,
    lr,
    layout,
    head,
    flags,
    hyper,
    x,
    yf,
    yi,
    order,
    lens,
    active,
    wT,
    bsum,
    xb,
    hs,
    dh,
    dh2,
    dz,
    carry,
    out,
    g,
    losses,
):
    """One epoch over ``order`` in batches of flags[F_BATCH]; ``losses[b]`` gets batch b's mean
    loss, and ``theta`` and the optimizer slots ``sa``, ``sb`` are updated after every batch.
    With lengths (flags[F_LENGTHS], ``lens [N]``) each batch's rows in ``order`` come sorted
    longest first (``lengths.batch_order``); ``active [T]`` is scratch."""
    B, N, T = flags[F_BATCH], order.size, x.shape[1]
    for b in range(losses.size):
        start, stop = b * B, min(b * B + B, N)
        steps = live_rows(order[start:stop], lens, flags, T, active)
        count, coef = batch_count(stop - start, flags, steps)
        transpose_weights(theta, layout, flags[F_HIDDEN], wT, bsum)
        g[:] = 0.0
        total = block_loss_grad(
            order[start:stop],
            lens,
            active,
            theta,
            layout,
            head,
            flags,
            x,
            yf,
            yi,
            coef,
            wT,
            bsum,
            xb,
            hs,
            dh,
            dh2,
            dz,
            carry,
            out,
            g,
        )
        losses[b] = total / count
        finish_batch(theta, g, sa, sb, step0 + b + 1, lr, layout, flags, hyper)


# -- the runner the core calls ---------------------------------------------------------------
def pack_layout(params: dict[str, np.ndarray], layers: int, hidden: int):
    """Offsets of every tensor in the flat vector (in ``params`` order), per layer
    ``[w_ih, w_hh, b_ih, b_hh, fan_in, offset in wT]``, and ``[head.weight, head.bias]``."""
    offsets, at = {}, 0
    for name, p in params.items():
        offsets[name] = at
        at += p.size
    layout = np.zeros((layers, 6), dtype=np.int64)
    at_t = 0
    for layer in range(layers):
        fan_in = params[param_name("weight_ih", layer)].shape[1]
        layout[layer] = [offsets[param_name(key, layer)] for key in LAYER_KEYS] + [fan_in, at_t]
        at_t += (fan_in + hidden) * hidden
    head = np.array([offsets[param_name(key)] for key in HEAD_KEYS], dtype=np.int64)
    return offsets, layout, head, at, at_t


class EpochRunner:
    """``run(params, optimizer, x, y, order, lr, lengths=None) -> batch losses`` for one plan.

    Creating it compiles the kernels (or loads them from numba's on-disk cache) by running an
    epoch on a tiny problem, so that compilation happens before training, not in epoch 1.
    """

    def __init__(self, plan):
        m, tr = plan.model, plan.train
        self.plan, self.dtype = plan, np.dtype(m.dtype)
        self.hyper = np.array(
            [tr.grad_clip_value, tr.momentum, tr.beta1, tr.beta2, tr.eps, tr.weight_decay],
            dtype=np.float64,
        )
        self._shape = None
        self._warm_up()

    def _warm_up(self) -> None:
        out = 2
        params = init_params(self.plan.model, Shape(1, out), np.random.default_rng(0))
        x = np.zeros((2, 3, 1), self.dtype)
        lead = (3,) if self.plan.target == "last" else (2, 3)
        y = (
            np.zeros(lead, np.int64)
            if self.plan.loss == "xent"
            else np.zeros((*lead, out), self.dtype)
        )
        self(params, Optimizer(self.plan.train, params), x, y, np.arange(3), 0.0)
        self._shape = None

    def _buffers(self, params, T: int) -> None:
        """Scratch for this model and sequence length, allocated once and reused every epoch."""
        key = (tuple((k, p.shape) for k, p in params.items()), T)
        if self._shape == key:
            return
        m, dt = self.plan.model, self.dtype
        L, H = m.layers, m.hidden_size
        n_in = params[param_name("weight_ih", 0)].shape[1]
        n_out = params[param_name("weight")].shape[0]
        self.offsets, self.layout, self.head, size, size_t = pack_layout(params, L, H)
        tr = self.plan.train
        self.flags = np.array(
            [
                L,
                H,
                n_in,
                n_out,
                tr.batch_size,
                m.nonlinearity == "relu",
                self.plan.loss == "xent",
                self.plan.target == "every",
                CLIPS[tr.grad_clip],
                OPTIMIZERS[tr.optimizer],
                0,
            ],
            dtype=np.int64,
        )
        self.theta, self.sa, self.sb = (np.empty(size, dt) for _ in range(3))
        R = tr.batch_size
        self.scratch = (
            np.empty(size_t, dt),
            np.empty((L, H), dt),
            np.empty((R, T, n_in), dt),
            np.empty((L, R, T, H), dt),
            np.empty((R, T, H), dt),
            np.empty((R, T, H), dt),
            np.empty((R, H), dt),
            np.empty((R, H), dt),
            np.empty(n_out, dt),
            np.empty(size, dt),
        )
        self.active = np.empty(T, np.int64)
        self._shape = key

    def _pack(self, arrays: dict[str, np.ndarray], flat: np.ndarray) -> None:
        for name, p in arrays.items():
            flat[self.offsets[name] : self.offsets[name] + p.size] = p.ravel()

    def _unpack(self, flat: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        for name, p in arrays.items():
            p[...] = flat[self.offsets[name] : self.offsets[name] + p.size].reshape(p.shape)

    def __call__(self, params, optimizer, x, y, order, lr, lengths=None) -> np.ndarray:
        T, B = x.shape[0], self.plan.train.batch_size
        self._buffers(params, T)
        order = np.ascontiguousarray(order, dtype=np.int64)
        if lengths is None:
            lens = np.zeros(1, np.int64)
        else:  # each batch's rows longest first: the same batches, ready for the kernels
            lens = packing.check(lengths, T, x.shape[1])
            order = packing.batch_order(order, lens, B)
        self.flags[F_LENGTHS] = lengths is not None
        slots = list(optimizer.slots[next(iter(params))])  # slot names of this optimizer
        self._pack(params, self.theta)
        for name, flat in zip(slots, (self.sa, self.sb), strict=False):
            self._pack({k: s[name] for k, s in optimizer.slots.items()}, flat)
        # row-major sequences and targets: [N, T, I], [N, Ty, O] (mse) or [N, Ty] (xent)
        xr = np.ascontiguousarray(np.swapaxes(x, 0, 1), dtype=self.dtype)
        ys = y[:, None] if self.plan.target == "last" else np.swapaxes(y, 0, 1)
        if self.plan.loss == "xent":
            yi, yf = np.ascontiguousarray(ys, dtype=np.int64), np.zeros((1, 1, 1), self.dtype)
        else:
            yi, yf = np.zeros((1, 1), np.int64), np.ascontiguousarray(ys, dtype=self.dtype)
        losses = np.empty((len(order) + B - 1) // B, np.float64)
        epoch(
            self.theta,
            self.sa,
            self.sb,
            optimizer.steps,
            float(lr),
            self.layout,
            self.head,
            self.flags,
            self.hyper,
            xr,
            yf,
            yi,
            order,
            lens,
            self.active,
            *self.scratch,
            losses,
        )
        optimizer.steps += len(losses)
        self._unpack(self.theta, params)
        for name, flat in zip(slots, (self.sa, self.sb), strict=False):
            self._unpack(flat, {k: s[name] for k, s in optimizer.slots.items()})
        return losses
