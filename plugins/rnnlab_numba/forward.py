"""The numba backend's compiled forward pass, for evaluation (validation loss, metrics, predict,
generation): every layer and direction of the model and its head ``y = h W^T + b`` in one call,
returning what ``rnnlab.nn.model.Model.outputs`` returns; no dropout.

Why it is shaped like this: the layer kernels (rnn.py, lstm.py, gru.py) keep every step's
states, and the gated ones every step's gates, for the backward pass: an LSTM over a 10,000-row
split at T = 100 allocated [T, N, 4H] (1 GB) that evaluation never reads. Here the rows go in
blocks of ``BLOCK``, each block through the whole stack before the next: a block's scratch is
one step's gates (a few steps' when a block has few rows) and, between layers (or for target
"every"), the block's ``[T, BLOCK, D*H]`` outputs. Blocks are independent (no sum runs across
them), so threads share them out with the same bits on any number of threads.

The parameters are copied into one flat vector per call, laid out as the fused epoch lays them
out (layout.pack_layout, without its alignment gaps) and described by the same settings
(layout.Settings): one compiled
signature per dtype whatever the cell, layers and directions. At one row and one step
(generation) that copy costs about as much as the arithmetic, from a few dozen row-steps on it
is noise.

The cells' per-step arithmetic is theirs (``lstm.cell_forward``, ``gru.cell_forward``,
``rnn.activate``, ``blocks.affine``): one cell, one set of equations. Every layer and
direction of a step, per block of rows:

    a  = x_t W_ih^T + b_ih          (x_t: the layer's input at step t, read backwards within
    hw = h_{t-1} W_hh^T + b_hh       each sequence's own length by the reverse direction)
    h_t (, c_t) = cell(a, hw, h_{t-1} (, c_{t-1}))

Variable length: the rows are sorted longest first (``lengths.pack``), so step t of a block runs
on the prefix of its rows still live; a row's state stops at its own last step (its final state)
and its outputs at later steps are the head's bias (its hidden state there is 0).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from rnnlab.plugin import Shape, cell_spec, init_params, param_name

from . import gru, lstm
from . import lengths as packing
from .blocks import OPTS, affine
from .jitcache import njit
from .layout import LSTM, RNN, Net, model_settings, pack_layout
from .rnn import activate

BLOCK = 32  # rows per block: a block's scratch stays in cache, and 4-row products fill up
# below this many multiply-adds a call stays on one thread: handing a share to another thread
# costs ~20-50 us; measured on 2 cores (rnn H=32 T=10), 2 threads gave 1.06x at 0.7M, 1.35x at
# 1.4M, 1.6-1.8x from 2.8M; an lstm at T=100 1.9-2.0x from 64 rows on
PARALLEL_WORK = 1_000_000
FIRST, HEAD_BIAS = param_name("weight_ih", 0), param_name("bias")
CELLS = ("rnn", "lstm", "gru")  # the cells it runs (the others: the layer kernels, composed)

# what the compiled forward implements (``rnnlab.nn.model.model_features`` of the models it runs)
FEATURES = frozenset(
    {
        *(f"cell={name}" for name in CELLS),
        "nonlinearity=tanh",
        "nonlinearity=relu",
        "dtype=float64",
        "dtype=float32",
        "hidden_size",
        "layers",
        "bidirectional",
        "lengths",
    }
)


# -- kernels ---------------------------------------------------------------------------------
@njit(**OPTS)
def cell_step(cell, relu, a, hw, h, c, new, hn):
    """One row of one step: ``a`` = x W_ih^T + b_ih, ``hw`` = h_{t-1} W_hh^T + b_hh; ``h`` (and
    lstm's ``c``) become the step's state. ``new``, ``hn`` are ``[H]`` scratch."""
    if cell == RNN:  # h = f(a + hw)
        for j in range(h.size):
            a[j] += hw[j]
        activate(a.reshape((1, a.size)), relu)
        h[:] = a
    elif cell == LSTM:
        lstm.cell_forward(a, hw, c, new, h)  # c_prev and c apart: its loops vectorise
        c[:] = new
    else:
        gru.cell_forward(a, hw, h, hn, new)
        h[:] = new


@njit(**OPTS)
def live(lens, r0, R, t):
    """How many of the block's first ``R`` rows (sorted longest first) are longer than t."""
    while R > 0 and lens[r0 + R - 1] <= t:
        R -= 1
    return R


@njit(**OPTS)
def direction(s, net, ld, inp, block, state, scratch, out):
    """Layer and direction ``ld`` (layer * D + direction) over a block of rows, ``block =
    (lens, r0, nb)``: the ``nb`` rows from sorted row ``r0``, ``lens`` every sorted row's
    length. From the state ``state = (h, c)``, each ``[P, H]``, left holding each row's state
    after its own last step. ``inp = (src, cols)``: row r's input at step t is ``src[t,
    cols[r]]``; its output goes to ``out[t, r, col:col + H]`` (unless ``out`` has no steps); the
    reverse direction reads and writes step ``lens[r] - 1 - t`` instead.

    The input products of ``k`` steps run together (``k * P`` rows, P the scratch rows): with a
    few rows per block (a stream, a sample) the 4-row products still fill up. Slots of rows that
    have ended are computed and never read (``xs`` starts at 0, so they hold finite values)."""
    xs, a, hw, new, hn = scratch
    src, cols = inp
    lens, r0, nb = block
    h, c = state
    D, w = s.directions, net.theta
    o_ih, o_hh, o_bih, o_bhh, K, _ = net.layout[ld]
    reverse, col = ld % D == 1, (ld % D) * h.shape[1]
    P, H = h.shape
    GH = hw.shape[1]
    Wih = w[o_ih : o_ih + GH * K].reshape((GH, K))
    Whh = w[o_hh : o_hh + GH * H].reshape((GH, H))
    b_ih, b_hh = w[o_bih : o_bih + GH], w[o_bhh : o_bhh + GH]
    k = max(1, BLOCK // P)
    T = lens[r0]
    for t0 in range(0, T, k):
        t1 = min(T, t0 + k)
        R = nb
        for t in range(t0, t1):  # a = x_t W_ih^T + b_ih, step t in slots (t - t0) * P + r
            R = live(lens, r0, R, t)
            for r in range(R):
                q = lens[r0 + r] - 1 - t if reverse else t
                slot = (t - t0) * P + r
                xs[slot * K : slot * K + K] = src[q, cols[r]]
        rows = (t1 - t0) * P
        affine(Wih, b_ih, xs[: rows * K].reshape((rows, K)), a[:rows])
        R = nb
        for t in range(t0, t1):
            R = live(lens, r0, R, t)
            affine(Whh, b_hh, h[:R], hw[:R])  # hw = h_{t-1} W_hh^T + b_hh
            for r in range(R):
                cell_step(s.cell, s.relu, a[(t - t0) * P + r], hw[r], h[r], c[r], new, hn)
            if out.shape[0] > 0:  # the reverse direction's step t is the sequence's step q
                for r in range(R):
                    q = lens[r0 + r] - 1 - t if reverse else t
                    out[q, r, col : col + H] = h[r]


@njit(**OPTS)
def head_every(head, hs, rows, block, ys, y):
    """y_t = h_t W^T + b (``head = (W, b)``) for the block's rows (``hs [T, P, D*H]``;
    ``block = (r0, nb)``; ``rows = [perm ; lens]``), b at the steps after a row's end (its
    hidden state there is 0); ``k`` steps' products at once, as in :func:`direction`."""
    Wy, by = head
    r0, nb = block
    perm, lens = rows[0], rows[1]
    T, P = hs.shape[0], hs.shape[1]
    k = max(1, BLOCK // P)
    Tb = lens[r0]
    for t0 in range(0, T, k):
        t1 = min(T, t0 + k)
        if t0 < Tb:
            n = (min(t1, Tb) - t0) * P
            affine(Wy, by, hs[t0 : t0 + n // P].reshape((n, hs.shape[2])), ys[:n])
        for t in range(t0, t1):
            for r in range(nb):
                if t < lens[r0 + r]:
                    y[t, perm[r0 + r]] = ys[(t - t0) * P + r]
                else:
                    y[t, perm[r0 + r]] = by


@njit(nogil=True, **OPTS)
def run_blocks(s, net, x, rows, states, y, share):
    """Blocks ``first, first + stride, ...`` of the rows (``share = (first, stride)``): the
    stack, then the head.

    ``s``: layout.Settings (the model's part); ``net``: layout.Net (``theta`` every parameter,
    flat, ``layout`` and ``head`` their offsets; ``wT`` unused). ``x [T, N, I]``; sorted row k
    is sequence ``rows[0, k]``, of length ``rows[1, k]`` (longest first). ``states = (state0,
    state)``, each ``[L * D, S, N, H]`` (S: the cell's state tensors): the initial state, and
    the final one written here; ``y`` is ``[T, N, O]`` (target "every") or ``[1, N, O]``
    (target "last")."""
    first, stride = share
    state0, state = states
    L, D, H, G = s.layers, s.directions, s.hidden, s.gates
    perm, lens = rows[0], rows[1]
    T, N, n_in = x.shape
    DH, O, P = D * H, y.shape[2], min(BLOCK, N)
    dt = x.dtype
    # scratch: the input products of up to BLOCK rows (k steps of P rows), one step's state
    xs = np.zeros(BLOCK * max(n_in, DH), dt)
    a, hw = np.empty((BLOCK, G * H), dt), np.empty((P, G * H), dt)
    h, c = np.empty((P, H), dt), np.empty((P, H), dt)
    scratch = (xs, a, hw, np.empty(H, dt), np.empty(H, dt))
    # every step's outputs of a layer, while the next layer (or the head) reads them
    bufs = np.zeros((2 if L > 1 else 1, T if L > 1 or s.every else 0, P, DH), dt)
    top, ys = np.empty((P, DH), dt), np.empty((BLOCK, O), dt)
    local = np.arange(P)
    o_w, o_b = net.head[0], net.head[1]
    head = (net.theta[o_w : o_w + O * DH].reshape((O, DH)), net.theta[o_b : o_b + O])
    lstm = s.cell == LSTM
    for b in range((N + BLOCK - 1) // BLOCK):
        if b % stride != first:
            continue
        r0 = b * BLOCK
        nb = min(BLOCK, N - r0)
        for layer in range(L):
            if layer == 0:
                src, cols = x, perm[r0 : r0 + nb]
            else:
                src, cols = bufs[(layer - 1) % 2], local
            # its outputs: kept for the layer above or the head, else not at all
            out = bufs[layer % 2] if layer < L - 1 or s.every else bufs[0, :0]
            for d in range(D):
                ld = layer * D + d
                for r in range(nb):
                    h[r] = state0[ld, 0, perm[r0 + r]]
                    if lstm:
                        c[r] = state0[ld, 1, perm[r0 + r]]
                direction(s, net, ld, (src, cols), (lens, r0, nb), (h, c), scratch, out)
                for r in range(nb):  # each row's state after its own last step
                    state[ld, 0, perm[r0 + r]] = h[r]
                    if lstm:
                        state[ld, 1, perm[r0 + r]] = c[r]
                    top[r, d * H : (d + 1) * H] = h[r]
        if s.every:
            head_every(head, bufs[(L - 1) % 2], rows, (r0, nb), ys, y)
        else:  # y = [h_n forward ; h_n reverse] W^T + b, of the top layer
            affine(head[0], head[1], top[:nb], ys[:nb])
            for r in range(nb):
                y[0, perm[r0 + r]] = ys[r]


_pool: tuple[int, ThreadPoolExecutor] | None = None  # (threads, the pool), made when needed


def helpers(threads: int) -> ThreadPoolExecutor:
    """A pool of at least ``threads`` threads, kept for later calls."""
    global _pool
    if _pool is None or _pool[0] < threads:
        if _pool is not None:
            _pool[1].shutdown(wait=False)
        _pool = (threads, ThreadPoolExecutor(threads, thread_name_prefix="rnnlab-forward"))
    return _pool[1]


def run_threads(s, net, x, rows, states, y, workers: int) -> None:
    """:func:`run_blocks` with the blocks dealt out to ``workers`` threads, this one among them.

    Python threads (the kernel releases the GIL) rather than a numba ``prange``: the same
    sharing of independent blocks, without a second compiled signature per dtype (the
    ``parallel=True`` wrapper took 5.5 s more to compile cold, per dtype)."""
    pool = helpers(workers - 1)
    shares = [
        pool.submit(run_blocks, s, net, x, rows, states, y, (k, workers)) for k in range(1, workers)
    ]
    run_blocks(s, net, x, rows, states, y, (0, workers))
    for share in shares:
        share.result()


# -- the runner ------------------------------------------------------------------------------
class ForwardRunner:
    """``fwd(params, x, target, lengths=None, state=None) -> (outputs, final_state)`` for one
    model configuration, as ``Backend.forward_runner`` returns it. ``threads`` (0: chosen by
    size, never more than numba's) only changes the speed, never a bit of the result.

    Python work per call is kept to a few microseconds: generation and stateful streams call
    it once per character or chunk."""

    def __init__(self, cfg, threads: int = 0):
        self.cfg, self.threads = cfg, threads
        self.layers, self.hidden = cfg.layers, cfg.hidden_size
        self.dirs, self.states = 2 if cfg.bidirectional else 1, len(cell_spec(cfg.cell).state)
        self.settings = model_settings(cfg)
        self._plans = {}
        self._full = (None, None)

    def plan(self, params, every: bool):
        """``(settings, names, layout, head)``: the settings for ``every`` and the parameters'
        places in the flat vector (layout.pack_layout, as the fused epoch lays them out, without
        its alignment gaps), computed once per input and output width (the rest is the
        model's)."""
        key = (params[FIRST].shape[1], params[HEAD_BIAS].size, every)
        if key not in self._plans:
            s = self.settings._replace(every=every)
            offsets, layout, head, _, _ = pack_layout(
                params, cell_spec(self.cfg.cell), s.layers, s.hidden, s.directions, aligned=False
            )
            self._plans[key] = (s, list(offsets), layout, head)
        return self._plans[key]

    def net(self, params, every: bool):
        """The settings and a layout.Net holding a copy of ``params`` (unaligned: one
        concatenation, in the order the plan's offsets follow)."""
        s, names, layout, head = self.plan(params, every)
        theta = np.concatenate([params[name].ravel() for name in names])
        return s, Net(theta, layout, head, theta[:0])

    def rows(self, lengths, T: int, N: int) -> np.ndarray:
        """``[perm ; lens]``: the rows sorted longest first and their lengths."""
        if lengths is None:
            key, rows = self._full
            if key != (T, N):
                rows = np.stack([np.arange(N), np.full(N, T)]).astype(np.int64)
                self._full = ((T, N), rows)
            return rows
        lens = packing.check(lengths, T, N)
        perm = np.argsort(-lens, kind="stable")
        return np.stack([perm, lens[perm]])

    def workers(self, work: int, blocks: int) -> int:
        """Threads for a call of ``work`` multiply-adds over ``blocks`` blocks of rows."""
        if self.threads:
            return max(1, min(self.threads, blocks, numba.get_num_threads()))
        if work < PARALLEL_WORK or blocks < 2:
            return 1
        return min(numba.get_num_threads(), blocks)

    def __call__(self, params, x, target, lengths=None, state=None):
        L, D, H, S = self.layers, self.dirs, self.hidden, self.states
        head = params[HEAD_BIAS]
        every = target == "every"
        s, net = self.net(params, every)
        x = np.ascontiguousarray(x, dtype=head.dtype)
        T, N, n_in = x.shape
        rows = self.rows(lengths, T, N)
        if state is None:
            state0 = np.zeros((L * D, S, N, H), head.dtype)
        else:
            state0 = np.ascontiguousarray(np.array(state, dtype=head.dtype).reshape(L * D, S, N, H))
        y = np.empty((T if every else 1, N, head.size), head.dtype)
        final = np.empty_like(state0)
        workers = 1
        if N > BLOCK:
            # multiply-adds: per step of a sequence, G*H outputs of (input + H) products per
            # layer and direction
            steps = T * N if lengths is None else int(rows[1].sum())
            layer = s.gates * H * (n_in + H + (L - 1) * (D * H + H))
            workers = self.workers(steps * D * layer, (N + BLOCK - 1) // BLOCK)
        if workers == 1:
            run_blocks(s, net, x, rows, (state0, final), y, (0, 1))
        else:
            run_threads(s, net, x, rows, (state0, final), y, workers)
        states = [tuple(final[ld, i] for i in range(S)) for ld in range(L * D)]
        return (y if every else y[0]), states


def warm_up(cfg) -> None:
    """Compile (or load from numba's cache) the forward kernel of ``cfg``'s dtype (one for
    every cell, layer count and direction) on a tiny problem."""
    params = init_params(cfg, Shape(1, 1), np.random.default_rng(0))
    ForwardRunner(cfg, threads=1)(params, np.zeros((2, 2, 1), np.dtype(cfg.dtype)), "last")
