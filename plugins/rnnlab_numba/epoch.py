"""A whole training epoch in one compiled call: minibatches in the given order, forward, loss,
BPTT, gradient clipping and the optimizer step, exactly as ``rnnlab.training.loop.reference_epoch``
and
``rnnlab.nn.optim`` do it, for every built-in cell (rnn, lstm, gru: network.py's layers;
mingru, minlstm, indrnn, lru: diagonal.py's) and any number of layers.

Why it is shaped like this: at the article's sizes one batch's arithmetic takes tens of
microseconds, so Python work around a batch (dict handling, one NumPy call per parameter in the
optimizer) would cost as much as the kernels. Parameters, gradients and optimizer slots are
packed into flat vectors (layout.py), the scratch buffers are allocated once per runner, and
the compiled code takes a few named structures (layout.Shared: Settings, Net, Data, Scratch;
Slots; each batch and chunk of rows a layout.Chunk).

Chunks and threads: each batch's rows split into chunks whose size depends on the problem's
size only (``layout.chunk_rows``: one chunk for a small batch); each chunk runs the whole
network (network.py) into its own gradient buffer, and the chunks are summed in chunk order, so
the result is the same to the bit whether the chunks run on one thread or several.
``train.threads`` (0: chosen by size, see ``threads_for``) sets how many; with more than one,
one parallel region per batch runs the chunks (numba ``prange``).

Variable length (``lengths``): each batch's rows are sorted longest first (lengths.py), so step
t runs on the live prefix of each chunk's rows and a chunk stops at its longest sequence: the
cost follows the lengths, not the padding. The head reads each sequence's own last step
("last") or its valid steps ("every", the loss a mean over valid steps).

Stateful epochs (``chunk_length = k``, ``rnnlab.training.stateful.stateful_epoch``): the B streams
are
one batch of B rows, and batch b is their steps ``b k .. b k + k - 1``; each chunk of rows
keeps its layers' final state in its scratch (``Scratch.state0``) for the next, so the whole
epoch, thousands of optimizer steps at min-char-rnn's settings, is still one compiled call.

Dropout: the masks the core loop would draw are drawn here first, in its order, into one array
for the epoch (``EpochRunner._masks``); the kernels multiply each layer's outputs by them where
the layer above reads them (network.drop) and its gradient on the way back.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import prange

from rnnlab.plugin import Optimizer, Shape, cell_spec, dropout_masks, init_params, param_name

from . import lengths as packing
from .blocks import OPTS
from .diagonal import FLAT, grouped
from .jitcache import compiling, njit, ready
from .layout import (
    ADAGRAD,
    CELLS,
    CLIPS,
    LRU,
    OPTIMIZERS,
    Bidirectional,
    Chunk,
    Data,
    Net,
    Scratch,
    Shared,
    Slots,
    aligned_zeros,
    batch_work,
    chunk_rows,
    input_size,
    model_settings,
    optimizer_settings,
    pack_layout,
)
from .network import chunk_loss_grad, prepare_weights
from .onehot import hot_columns
from .step import clip_update, clip_update_cols, sums_settled

assert FLAT == 11  # one_chunk's literal indices (numba wants them literal)

# Every plan feature (``rnnlab.training.loop.EpochPlan.features``) the fused epoch implements; the
# core
# runs any plan using something else (a feature added later) through its own loop.
FEATURES = frozenset(
    {
        *(f"cell={name}" for name in CELLS),
        *(f"nonlinearity={name}" for name in ("tanh", "relu", "gelu", "identity")),
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
        "chunk_length",
        "dropout",
        "bidirectional",
        *(f"grad_clip={name}" for name in CLIPS),
        *(f"optimizer={name}" for name in OPTIMIZERS),
    }
)


# -- kernels ---------------------------------------------------------------------------------
@njit(**OPTS)
def one_chunk(c, batch, model, buffers, bi):
    """Chunk ``c`` of ``batch`` (a layout.Chunk of all its rows): ``network.chunk_loss_grad``
    with ``model = (s, net, data, buf)`` (layout.Shared's parts) and ``buffers = cell +
    (masks, mid)``: the cell's buffers as ``EpochRunner.cell_buffers`` lays them out flat
    (``diagonal.grouped``), the dropout masks and the layers' outputs."""
    s, net, data, buf = model
    C = s.chunk_rows
    part = batch.rows[c * C : min(c * C + C, batch.rows.size)]
    ch = Chunk(c, part, batch.pos + c * C, batch.t0, batch.T, batch.h0_zero, batch.coef)
    cell, masks, mid = grouped(buffers[:11]), buffers[11], buffers[12]  # 11: diagonal.FLAT
    chunk_loss_grad(ch, Shared(s, net, data, buf), cell, masks, mid, bi)


@njit(parallel=True, **OPTS)
def run_chunks_parallel(batch, s, net, data, buf, buffers, bi):
    """Every chunk of the batch, on numba's threads (one parallel region). (The chunk's loss
    is stored by chunk_loss_grad: here ``buf.loss[c] = ...`` is lost (a numba 0.68 parfor bug
    with arrays held in tuples).) What the loop reads enters as arguments, each a flat
    structure (numba's parallel region rejected layout.Shared, named tuples inside a named
    tuple, and named tuples built or unpacked in the function); one_chunk builds them."""
    C = s.chunk_rows
    for c in prange((batch.rows.size + C - 1) // C):
        one_chunk(c, batch, (s, net, data, buf), buffers, bi)


@njit(**OPTS)
def batch_count(rows, s, data, T):
    """How many loss terms the batch's mean runs over, and the gradient's scale for each."""
    targets = rows.size
    if s.every:  # every valid step of every row
        targets = 0
        for r in range(rows.size):
            targets += data.lens[rows[r]] if s.lengths else T
    if s.xent:
        return targets, 1.0 / targets
    return targets * s.n_out, 2.0 / (targets * s.n_out)


@njit(**OPTS)
def epoch(sh, slots, losses, cell, masks, mid, bi, threaded):
    """One epoch; ``losses[b]`` gets batch b's mean loss, and theta and the optimizer slots
    are updated after every batch. Windowed (``s.chunk_length`` 0): batches of ``s.batch``
    rows of ``data.order``, every step. Stateful: batch b is chunk b of the streams, steps
    ``b k .. b k + k - 1`` of every row (the last chunk may be shorter), each starting from
    the state the previous one ended in (zeros for the first). ``threaded`` is None to run
    the chunks on this thread (the parallel kernel is then not compiled).

    The serial path calls ``chunk_loss_grad`` itself, through no wrapper: numba optimises and
    turns into machine code, for every compiled function, a module holding everything it
    calls, so each level of wrappers above the network cost a cold compile a fifth more."""
    s, net, data, buf = sh
    buffers = cell + (masks, mid)
    B, N, S, k = s.batch, data.order.size, data.x.shape[0], s.chunk_length
    buf.state0[:] = 0
    # one-hot inputs (a char model): the Adagrad step skips the W_ih columns of characters
    # absent from the batch (step.clip_update_cols), one direction, every step live
    o_ih, J, K = net.layout[0, 0], s.gates * s.hidden, data.x.shape[2]
    cols, seen = np.empty(K, np.int64), np.empty(K, np.bool_)
    sparse = s.optimizer == ADAGRAD and s.directions == 1 and not s.lengths and s.cell != LRU
    sparse = sparse and sums_settled(net.theta, slots.sa, o_ih, o_ih + J * K)
    for b in range(losses.size):
        if k:
            lo, hi, t0, T = 0, N, b * k, min(k, S - b * k)
        else:
            lo, hi, t0, T = b * B, min(b * B + B, N), 0, S
        rows = data.order[lo:hi]
        count, coef = batch_count(rows, s, data, T)
        prepare_weights(s, net, cell[0], grouped(cell)[4])
        h0_zero = k == 0 or b == 0
        C = s.chunk_rows
        chunks = (rows.size + C - 1) // C
        if threaded is None:  # one chunk after the other, called from here (docstring)
            for c in range(chunks):
                part = rows[c * C : min(c * C + C, rows.size)]
                ch = Chunk(c, part, lo + c * C, t0, T, h0_zero, coef)
                chunk_loss_grad(ch, sh, grouped(cell), masks, mid, bi)
        else:
            batch = Chunk(0, rows, lo, t0, T, h0_zero, coef)
            run_chunks_parallel(batch, s, net, data, buf, buffers, bi)
        # the chunks' sums, in chunk order (whatever thread ran them)
        g, total = buf.g[0], buf.loss[0]
        for c in range(1, chunks):
            g += buf.g[c]
            total += buf.loss[c]
        losses[b] = total / count
        step = slots.steps + b + 1
        n = hot_columns(data.x, rows, t0, T, cols, seen) if sparse else -1
        if n >= 0:
            clip_update_cols(s, net.theta, g, slots, step, (o_ih, J, K, cols, n))
        else:
            clip_update(s, net.theta, g, slots, step)


# -- the runner the core calls ---------------------------------------------------------------
def threads_for(plan, chunks: int) -> int:
    """Threads for the chunks: ``train.threads`` when set (at most numba's), else one unless a
    batch has several chunks (enough work: layout.chunk_rows) and another core is free now.

    Measured (benchmarks/threads.py, 2-core Xeon, one core free): two threads paid 1.5x at
    the article's T=10 H=32 B=32 and 1.9x at B=128, only 1.1-1.3x below layout.CHUNK_WORK's
    threshold; with the other core busy they never paid (10-100x slower at T=10 H=32 B=32,
    each batch's parallel region waiting for the OS to schedule the second thread). So the
    rule asks for about the article's work per batch and for a core nobody else is using at
    the start of the epoch (``busy_elsewhere``). Results are the same bytes whichever it picks.
    """
    asked = getattr(plan.train, "threads", 0)
    cores = numba.config.NUMBA_NUM_THREADS
    if asked:
        return max(1, min(asked, cores))
    if chunks < 2:
        return 1
    spare = cores - 1 - busy_elsewhere()  # cores beyond the one this process keeps busy
    return max(1, min(cores, chunks, 1 + int(spare + 0.5)))


THREADED = np.empty(0)  # the epoch's ``threaded`` argument: run the chunks on numba's threads
POOL: set[str] = set()  # numba's worker threads (task ids), found by the first parallel epoch
_pool_looked = False


def own_threads() -> set[str]:
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:
        return set()


def busy_elsewhere(proc: str = "/proc") -> float:
    """How many cores other tasks keep busy now: the tasks running or waiting for a core
    (``/proc/loadavg``'s fourth field, an instant count) less the caller and numba's own
    workers (``POOL``; they spin a few ms after a parallel region). This process's other
    threads count as busy: OpenBLAS's workers spin about 0.1 s after a NumPy product (two
    threads then ran an lstm T=10 H=32 epoch in 107 ms instead of 5.6). The one-minute load
    average lags by a minute: it counted a benchmark's own previous contenders and kept this
    epoch on one thread on an idle machine. Elsewhere: the load average less one. (``proc``:
    where /proc is, for tests.)"""
    try:
        with open(f"{proc}/loadavg") as f:
            total = int(f.read().split()[3].split("/")[0])
        if total <= 1:  # only the caller
            return 0.0
        pool = 0
        for tid in POOL:
            try:
                with open(f"{proc}/self/task/{tid}/stat") as f:
                    pool += f.read().rpartition(")")[2].split()[0] == "R"
            except OSError:  # the worker has gone
                pass
        return float(max(0, total - 1 - pool))
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] - 1 if hasattr(os, "getloadavg") else float("inf")


def runner_options(lengths=None, chunk_length=0, dropout_rng=None):
    """The epoch runner's optional keywords, with their defaults (an unknown one: TypeError)."""
    return lengths, chunk_length, dropout_rng


class EpochRunner:
    """``run(params, optimizer, x, y, order, lr, lengths=None) -> batch losses`` for one plan.

    Creating it compiles the kernels (or loads them from numba's on-disk cache) by running an
    epoch on a tiny problem, so that compilation happens before training, not in epoch 1. The
    threaded kernel compiles there only when ``train.threads`` > 1; threads chosen by size use
    it only once it is compiled (``_threads``). Each compilation is said as it happens
    (``jitcache.compiling``).
    """

    def __init__(self, plan):
        m, tr = plan.model, plan.train
        self.plan, self.dtype = plan, np.dtype(m.dtype)
        self.settings = model_settings(
            m,
            n_out=0,
            batch=tr.batch_size,
            chunk_rows=tr.batch_size,
            chunk_length=0,
            xent=plan.loss == "xent",
            every=plan.target == "every",
            lengths=False,
            **optimizer_settings(tr),
        )
        self.dropout = m.dropout > 0 and m.layers > 1
        self._shape = None
        self._threaded_ready: bool | None = None  # the threaded epoch compiled (_threads)
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
        rng = np.random.default_rng(0) if self.dropout else None
        self(params, Optimizer(self.plan.train, params), x, y, np.arange(3), 0.0, dropout_rng=rng)
        self._shape = None

    def _threads(self, chunks: int, args: tuple) -> int:
        """``threads_for``'s count, except that an automatic choice takes more than one thread
        only once the threaded epoch is compiled (in this process or the on-disk cache, as
        it stood when this runner first asked): compiling it costs a first run far more than
        the threads gain (``rnnlab warm-up`` compiles it). The results are the same bytes
        either way."""
        n = threads_for(self.plan, chunks)
        if n > 1 and not getattr(self.plan.train, "threads", 0):
            if self._threaded_ready is None:  # asked once per runner (it reads the cache)
                self._threaded_ready = ready(epoch, (*args, THREADED))
            if not self._threaded_ready:
                return 1
        return n

    def _buffers(self, params, T: int, batch: int) -> None:
        """Scratch for this model, sequence length (a stateful epoch's: its chunk length) and
        batch size, allocated once and reused every epoch."""
        key = (tuple((k, p.shape) for k, p in params.items()), T, batch)
        if self._shape == key:
            return
        s, dt, cell = self.settings, self.dtype, self.plan.model.cell
        L, D, H, G = s.layers, s.directions, s.hidden, s.gates * s.hidden
        spec = cell_spec(cell)
        n_in = input_size(params, spec)
        n_out = params[param_name("weight")].shape[0]
        R = chunk_rows(batch, batch_work(batch, T, s.gates, H, L * D))
        self.settings = s = s._replace(n_out=n_out, batch=batch, chunk_rows=R)
        self.offsets, layout, head, size, size_t = pack_layout(params, spec, L, H, D)
        # aligned (layout.pack_layout): every matrix of theta, wT and the gradients on a line
        self.net = Net(aligned_zeros(size, dt), layout, head, aligned_zeros(size_t, dt))
        self.sa, self.sb = aligned_zeros(size, dt), aligned_zeros(size, dt)
        C = -(-batch // R)
        self.buf = Scratch(
            xb=np.zeros((C, T, R, n_in), dt),
            hs=np.zeros((C, L * D, T, R, H), dt),
            dh=np.zeros((C, T, R, H), dt),
            dh2=np.zeros((C, T, R, H), dt),
            wide=np.zeros((C, 2, R, G), dt),
            narrow=np.zeros((C, 2, R, H), dt),
            state0=np.zeros((C, L * D, 2, R, H), dt),
            active=np.zeros((C, T), np.int64),
            out=np.zeros((C, n_out), dt),
            g=aligned_zeros((C, size), dt),
            loss=np.zeros(C, np.float64),
            outs=np.zeros((C, T, R, n_out), dt),
            hv=np.zeros((C, D * H), dt),
            dv=np.zeros((C, D * H), dt),
        )
        per_layer = (C, L * D, T, R)
        # flat (diagonal.grouped: a parallel region's arguments hold no nested tuples)
        flat: list = [None] * FLAT
        if cell in ("rnn", "lstm", "gru"):
            flat[:4] = (
                np.zeros((L * D, H), dt) if cell == "rnn" else None,  # bsum
                None if cell == "rnn" else np.zeros((*per_layer, G), dt),  # gates
                np.zeros((*per_layer, H), dt) if cell == "lstm" else None,  # cs
                np.zeros((*per_layer, H), dt) if cell == "gru" else None,  # hn
            )
        else:  # diagonal.py's buffers, after a marker (its ``modern`` is not None)
            flat[4] = np.zeros(1, dt)
            if cell == "lru":
                flat[8:11] = (
                    np.zeros((C, L * D, 6, T, R, H), dt),
                    np.zeros((L * D, 3, H), dt),
                    np.zeros((L * D, 2, H, H), dt),
                )
            elif cell == "indrnn":
                flat[7] = flat[4]  # it keeps nothing of its own
            else:
                flat[5 if cell == "mingru" else 6] = np.zeros((*per_layer, G), dt)
        self.cell_buffers = tuple(flat)
        # the layers' outputs as the layer above reads them: [forward ; reverse] * mask
        self.mid = np.zeros((C, L, T, R, D * H), dt) if self.dropout or D == 2 else None
        self.bi = None
        if D == 2:
            self.bi = Bidirectional(
                rx=np.zeros((C, T, R, n_in), dt),
                rmid=np.zeros((C, T, R, D * H), dt),
                dcat=np.zeros((C, 2, T, R, D * H), dt),
                dxr=np.zeros((C, T, R, D * H), dt),
            )
        self._shape = key

    def _pack(self, arrays: dict[str, np.ndarray], flat: np.ndarray) -> None:
        for name, p in arrays.items():
            flat[self.offsets[name] : self.offsets[name] + p.size] = p.ravel()

    def _unpack(self, flat: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        for name, p in arrays.items():
            p[...] = flat[self.offsets[name] : self.offsets[name] + p.size].reshape(p.shape)

    def _masks(self, rng, order, lens, perm, T: int, k: int) -> np.ndarray | None:
        """The epoch's dropout masks in one array ``[L-1, steps, rows, H]``, drawn exactly as the
        core loop draws them (``dropout_masks`` per batch, in order; a stateful epoch: per chunk
        of steps): entry ``[l, t, p]`` is for step t of the row at position p of ``order``
        (``perm[p]``: that row's position before each batch was sorted by length)."""
        if not self.dropout:
            return None
        if rng is None:
            raise ValueError("model.dropout > 0 needs a generator for its masks (dropout_rng)")
        m, N = self.plan.model, order.size
        width = self.settings.directions * m.hidden_size
        drawn = np.zeros((m.layers - 1, T, N, width), self.dtype)
        if k:  # chunk c: steps c k .. of every stream
            for t0 in range(0, T, k):
                steps = min(k, T - t0)
                drawn[:, t0 : t0 + steps] = dropout_masks(m, rng, steps, N, self.dtype)
            return drawn
        B = self.plan.train.batch_size
        for lo in range(0, N, B):  # batch by batch, its rows in the core's order
            hi = min(lo + B, N)
            Tb = int(lens[order[lo:hi]].max()) if self.settings.lengths else T
            drawn[:, :Tb, lo:hi] = dropout_masks(m, rng, Tb, hi - lo, self.dtype)
        return np.ascontiguousarray(drawn[:, :, perm])

    def __call__(self, params, optimizer, x, y, order, lr, **options) -> np.ndarray:
        """The core's epoch-runner contract (:meth:`rnnlab.specs.Backend.epoch_runner`); the
        optional ``lengths``, ``chunk_length`` and ``dropout_rng`` come as keywords."""
        lengths, chunk_length, dropout_rng = runner_options(**options)
        k = int(chunk_length or 0)
        S, N = x.shape[:2]
        if k:  # B parallel streams, every one in every chunk of steps
            if order is not None or lengths is not None or self.settings.directions == 2:
                raise ValueError("a stateful epoch takes no order, lengths or reverse direction")
            T, batch, order = k, N, np.arange(N, dtype=np.int64)
        else:
            T, batch = S, self.plan.train.batch_size
            order = np.ascontiguousarray(order, dtype=np.int64)
        self.settings = self.settings._replace(lengths=lengths is not None, chunk_length=k)
        self._buffers(params, T, batch)
        perm = np.arange(order.size)
        if lengths is None:
            lens = np.zeros(1, np.int64)
        else:  # each batch's rows longest first: the same batches, ready for the kernels
            lens = packing.check(lengths, S, N)
            perm = packing.batch_perm(order, lens, batch)
        masks = self._masks(dropout_rng, order, lens, perm, S, k)
        order = order[perm]
        s = self.settings
        slots = list(optimizer.slots[next(iter(params))])  # slot names of this optimizer
        self._pack(params, self.net.theta)
        for name, flat in zip(slots, (self.sa, self.sb), strict=False):
            self._pack({k: v[name] for k, v in optimizer.slots.items()}, flat)
        # targets row-major: [N, Ty, O] (mse) or [N, Ty] (xent)
        ys = y[:, None] if self.plan.target == "last" else np.swapaxes(y, 0, 1)
        if self.plan.loss == "xent":
            yi, yf = np.ascontiguousarray(ys, dtype=np.int64), np.zeros((1, 1, 1), self.dtype)
        else:
            yi, yf = np.zeros((1, 1), np.int64), np.ascontiguousarray(ys, dtype=self.dtype)
        data = Data(np.ascontiguousarray(x, dtype=self.dtype), yf, yi, order, lens)
        losses = np.empty(-(-S // k) if k else -(-order.size // batch), np.float64)
        opt = Slots(self.sa, self.sb, optimizer.steps, float(lr))
        args = (Shared(s, self.net, data, self.buf), opt, losses, self.cell_buffers, masks)
        args += (self.mid, self.bi)
        n = self.threads = self._threads(-(-batch // s.chunk_rows), args)  # kept: benchmarks
        threaded = None
        if n > 1:
            numba.set_num_threads(n)
            threaded = THREADED
        global _pool_looked
        before = None if threaded is None or _pool_looked else own_threads()
        with compiling(
            f"the training epoch ({self.plan.model.cell}, {self.dtype}"
            + (", threaded)" if n > 1 else ")")
        ):
            epoch(*args, threaded)
        if before is not None:  # the threads this first parallel epoch started are numba's
            POOL.update(own_threads() - before)  # (none if numba's pool ran before: those
            _pool_looked = True  # then count as busy while they spin, a few ms)
        optimizer.steps += len(losses)
        self._unpack(self.net.theta, params)
        for name, flat in zip(slots, (self.sa, self.sb), strict=False):
            self._unpack(flat, {k: v[name] for k, v in optimizer.slots.items()})
        return losses
