"""The layers of the cells whose recurrence is elementwise (mingru, minlstm, indrnn, lru) in
the fused epoch: their tensors read from the flat parameter vector by the layout (layout.py:
the offsets of a layer's tensors in the cell spec's order, then its fan_in), and their scans
(mingru.py, minlstm.py, indrnn.py) and kernels (lru.py) run on a chunk's buffers, as
network.py runs rnn, lstm and gru. The gates of mingru, minlstm and indrnn read the input
only: each step's input projection is one product before the scan (``affine_steps``), and the
weight gradients, bias sums and dx one product each after it (:func:`input_side`), the same
for the three cells. Last, their layer contract (time-major arrays in and out): ``MINGRU``,
``MINLSTM``, ``INDRNN``.

``modern = (mingru, minlstm, indrnn, lru)``, one entry per cell, the cell's own buffers for the
cell the model uses and None for the others (``modern`` itself is None for rnn, lstm and gru):
each function below branches on an ``is not None`` argument, which numba prunes as it
compiles, so that each compiled signature holds one cell's code. The buffers:

- mingru, minlstm: the gates ``[C, L*D, T, R, G*H]`` (pre-activations, then activated, then
  their gradients);
- indrnn: none (a marker array): its pre-activations go into ``hs``, their gradients into the
  incoming dL/dh;
- lru: ``(seq [C, L*D, 6, T, R, H], lam [L*D, 3, H], CT [L*D, 2, H, H])``: per direction the
  states' real and imaginary parts, B x (real, imaginary), the readout's pre-activations and
  a scratch; lambda (real, imaginary) and gamma; C_re^T and -C_im^T, refreshed every batch
  (``prepare``). Its complex initial state is ``state0``'s two slots (real, imaginary).
"""

import numpy as np
from numba import types
from numba.extending import overload

from . import indrnn, lru, mingru, minlstm
from .blocks import OPTS, add_outer_steps, add_product_steps, add_rows_steps, affine_steps
from .jitcache import njit

# -- the buffers as the epoch passes them -------------------------------------------------------
FLAT = 11  # (bsum, gates, cs, hn, marker, mingru, minlstm, indrnn, lru seq, lru lam, lru CT)


@njit(**OPTS)
def grouped(flat):
    """``(bsum, gates, cs, hn, modern)`` from the flat tuple the fused epoch passes around
    (the arguments of a parallel region may be tuples of arrays, not tuples of tuples):
    ``modern`` None (rnn, lstm, gru: ``marker`` None) or ``(mingru, minlstm, indrnn, lru)``."""
    lr = lru_of(flat[8], flat[9], flat[10])
    return flat[:4] + (modern_of(flat[4], flat[5], flat[6], flat[7], lr),)


def modern_of(marker, mg, ml, ind, lr):
    """None for rnn, lstm and gru (``marker`` None), else ``(mg, ml, ind, lr)``: chosen by
    type as numba compiles (an ``if marker is None`` would make the result Optional)."""
    return None if marker is None else (mg, ml, ind, lr)


def lru_of(seq, lam, CT):
    """None unless the model is an lru (``seq`` an array), else ``(seq, lam, CT)``."""
    return None if seq is None else (seq, lam, CT)


@overload(modern_of, jit_options={})
def _modern_of(marker, mg, ml, ind, lr):
    if isinstance(marker, types.NoneType):
        return lambda marker, mg, ml, ind, lr: None
    return lambda marker, mg, ml, ind, lr: (mg, ml, ind, lr)


@overload(lru_of, jit_options={})
def _lru_of(seq, lam, CT):
    if isinstance(seq, types.NoneType):
        return lambda seq, lam, CT: None
    return lambda seq, lam, CT: (seq, lam, CT)


# -- a layer's tensors: views of theta (or of a gradient vector of the same layout) -----------
@njit(**OPTS)
def vec(v, net, ld, k, n):
    """Tensor k (the spec's order) of direction ``ld``, ``[n]``."""
    o = net.layout[ld, k]
    return v[o : o + n]


@njit(**OPTS)
def mat(v, net, ld, k, rows, cols):
    """Tensor k (the spec's order) of direction ``ld``, ``[rows, cols]``."""
    o = net.layout[ld, k]
    return v[o : o + rows * cols].reshape((rows, cols))


@njit(**OPTS)
def fan_in(net, ld):
    return net.layout[ld, net.layout.shape[1] - 2]


@njit(**OPTS)
def input_gated(v, net, ld, G):
    """W_ih ``[G, fan_in]`` and b_ih ``[G]`` (mingru, minlstm)."""
    return mat(v, net, ld, 0, G, fan_in(net, ld)), vec(v, net, ld, 1, G)


@njit(**OPTS)
def indrnn_tensors(v, net, ld, H):
    """W_ih ``[H, fan_in]``, u ``[H]``, b_ih ``[H]``."""
    return mat(v, net, ld, 0, H, fan_in(net, ld)), vec(v, net, ld, 1, H), vec(v, net, ld, 2, H)


@njit(**OPTS)
def lru_tensors(v, net, ld, H):
    """nu_log, theta_log, gamma_log ``[H]``; B_re, B_im ``[H, fan_in]``; C_re, C_im ``[H, H]``;
    D ``[H, fan_in]``."""
    I = fan_in(net, ld)
    return (
        vec(v, net, ld, 0, H),
        vec(v, net, ld, 1, H),
        vec(v, net, ld, 2, H),
        mat(v, net, ld, 3, H, I),
        mat(v, net, ld, 4, H, I),
        mat(v, net, ld, 5, H, H),
        mat(v, net, ld, 6, H, H),
        mat(v, net, ld, 7, H, I),
    )


@njit(**OPTS)
def lru_derived(lr, ld):
    lam, CT = lr[1], lr[2]
    return lam[ld, 0], lam[ld, 1], lam[ld, 2], CT[ld, 0], CT[ld, 1]


# -- once per batch ------------------------------------------------------------------------------
@njit(**OPTS)
def prepare(s, net, modern):
    """The lru's lambda, gamma, C_re^T and -C_im^T of every direction, from theta."""
    if modern is not None:
        prepare_lru(s, net, modern[3])


@njit(**OPTS)
def prepare_lru(s, net, lr):
    if lr is not None:
        for ld in range(s.layers * s.directions):
            lru.prepare(lru_tensors(net.theta, net, ld, s.hidden), lru_derived(lr, ld))


# -- one direction of one layer over a chunk ---------------------------------------------------
@njit(**OPTS)
def layer_forward(ch, ld, sh, inp, modern):
    """Direction ``ld`` of chunk ``ch`` over its T steps of ``inp``, from ``buf.state0``."""
    if modern is not None:
        mg, ml, ind, lr = modern
        mingru_forward(ch, ld, sh, inp, mg)
        minlstm_forward(ch, ld, sh, inp, ml)
        indrnn_forward(ch, ld, sh, inp, ind)
        lru_forward(ch, ld, sh, inp, lr)


@njit(**OPTS)
def layer_backward(ch, ld, sh, flow, modern):
    """BPTT of direction ``ld`` of chunk ``ch``, ``flow = (inp, dh, dx)`` as
    network.layer_backward's."""
    if modern is not None:
        mg, ml, ind, lr = modern
        mingru_backward(ch, ld, sh, flow, mg)
        minlstm_backward(ch, ld, sh, flow, ml)
        indrnn_backward(ch, ld, sh, flow, ind)
        lru_backward(ch, ld, sh, flow, lr)


@njit(**OPTS)
def mingru_forward(ch, ld, sh, inp, gates):
    if gates is not None:
        h0, hs, g, active = projected(ch, ld, sh, inp, gates, 2)
        mingru.scan_forward(g, h0, hs, active)


@njit(**OPTS)
def mingru_backward(ch, ld, sh, flow, gates):
    if gates is not None:
        h0, hs, g, active = gated_views(ch, ld, sh, gates)
        mingru.scan_backward((hs, g), h0, flow[1], sh.buf.narrow[ch.c, 0], active)
        gated_input_side(ch, ld, sh, flow, g, 2)


@njit(**OPTS)
def minlstm_forward(ch, ld, sh, inp, gates):
    if gates is not None:
        h0, hs, g, active = projected(ch, ld, sh, inp, gates, 3)
        minlstm.scan_forward(g, h0, hs, active)


@njit(**OPTS)
def minlstm_backward(ch, ld, sh, flow, gates):
    if gates is not None:
        h0, hs, g, active = gated_views(ch, ld, sh, gates)
        minlstm.scan_backward((hs, g), h0, flow[1], sh.buf.narrow[ch.c, 0], active)
        gated_input_side(ch, ld, sh, flow, g, 3)


@njit(**OPTS)
def gated_views(ch, ld, sh, gates):
    """``(h0, hs, gates, active)`` of direction ``ld`` of chunk ``ch`` (mingru, minlstm)."""
    buf, c, T = sh.buf, ch.c, ch.T
    return buf.state0[c, ld, 0], buf.hs[c, ld, :T], gates[c, ld, :T], buf.active[c]


@njit(**OPTS)
def projected(ch, ld, sh, inp, gates, G):
    """:func:`gated_views` once every step's input projection is in the gates (``G`` blocks of
    H rows in W_ih: mingru 2, minlstm 3)."""
    h0, hs, g, active = gated_views(ch, ld, sh, gates)
    Wih, b_ih = input_gated(sh.net.theta, sh.net, ld, G * sh.s.hidden)
    affine_steps(Wih, b_ih, inp, g, active)  # every step's projection at once
    return h0, hs, g, active


@njit(**OPTS)
def gated_input_side(ch, ld, sh, flow, d, G):
    """:func:`input_side` of direction ``ld`` (``G`` blocks, as :func:`projected`) into the
    chunk's gradient, from ``d``, dL/d(pre-activations); ``flow = (inp, dh, dx)``."""
    inp, _, dx = flow
    W = input_gated(sh.net.theta, sh.net, ld, G * sh.s.hidden)
    grads = input_gated(sh.buf.g[ch.c], sh.net, ld, G * sh.s.hidden)
    input_side(W[0], inp, d, grads, (ld >= sh.s.directions, dx), sh.buf.active[ch.c])


@njit(**OPTS)
def indrnn_forward(ch, ld, sh, inp, marker):
    if marker is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        Wih, u, b_ih = indrnn_tensors(sh.net.theta, sh.net, ld, s.hidden)
        hs, active = buf.hs[c, ld, :T], buf.active[c]
        affine_steps(Wih, b_ih, inp, hs, active)  # every step's projection at once
        indrnn.scan_forward(u, buf.state0[c, ld, 0], hs, s.relu, active)


@njit(**OPTS)
def indrnn_backward(ch, ld, sh, flow, marker):
    if marker is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        inp, dh, dx = flow
        Wih, u, _ = indrnn_tensors(sh.net.theta, sh.net, ld, s.hidden)
        gWih, gu, gb_ih = indrnn_tensors(buf.g[c], sh.net, ld, s.hidden)
        seq, active = (buf.hs[c, ld, :T], buf.state0[c, ld, 0]), buf.active[c]
        indrnn.scan_backward(u, seq, s.relu, dh, gu, active)
        input_side(Wih, inp, dh, (gWih, gb_ih), (ld >= s.directions, dx), active)


@njit(**OPTS)
def lru_forward(ch, ld, sh, inp, lr):
    if lr is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        W = lru_tensors(sh.net.theta, sh.net, ld, s.hidden)
        seq = lr[0][c, ld]
        out = (buf.hs[c, ld, :T], seq[0, :T], seq[1, :T], seq[2, :T], seq[3, :T], seq[4, :T])
        h0 = (buf.state0[c, ld, 0], buf.state0[c, ld, 1])
        lru.forward(W, lru_derived(lr, ld), inp, h0, out, s.act, buf.active[c])


@njit(**OPTS)
def lru_backward(ch, ld, sh, flow, lr):
    if lr is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        inp, dh, dx = flow
        P = (lru_tensors(sh.net.theta, sh.net, ld, s.hidden), lru_derived(lr, ld))
        grads = lru_tensors(buf.g[c], sh.net, ld, s.hidden)
        q = lr[0][c, ld]
        seq = (buf.hs[c, ld, :T], q[0, :T], q[1, :T], q[2, :T], q[3, :T], q[4, :T], q[5, :T])
        h0 = (buf.state0[c, ld, 0], buf.state0[c, ld, 1])
        carry = (buf.narrow[c, 0], buf.narrow[c, 1])
        flow = (dh, ld >= s.directions, dx)
        lru.backward(P, (inp, h0), seq, flow, grads, carry, s.act, buf.active[c])


# -- the input side of mingru, minlstm and indrnn (their gates read the input only) ---------
@njit(**OPTS)
def input_side(Wih, x, d, grads, flow, active):
    """After the scan, from ``d [T, R, G*H]``, dL/d(pre-activations) of the input projection:
    ``grads = (gW_ih, gb_ih)`` += (sum_t d_t^T x_t, sum_t d_t); ``dx_t = d_t W_ih`` when
    ``flow = (need_dx, dx)`` asks. One product each over every step's live rows."""
    need_dx, dx = flow
    gWih, gb_ih = grads
    T = x.shape[0]
    add_outer_steps(gWih, d[:T], x, active)
    add_rows_steps(gb_ih, d[:T], active)
    if need_dx:
        for t in range(T):
            dx[t, : active[t]] = 0
        add_product_steps(Wih, d[:T], dx, active)


@njit(**OPTS)
def retained_totals(dhs, retain, active, totals):
    """dL/dh_t through step t's output and every later step into the live rows of ``totals
    [T, R, H]`` (0 elsewhere on entry), from ``dhs``, dL/dh_t through step t's output only, and
    ``retain``, dh_t/dh_{t-1} of the elementwise recurrence: total_t = dhs_t + retain_{t+1}
    total_{t+1}. For the diagnostics' gradient flow (the epoch does not use it)."""
    T, H = totals.shape[0], totals.shape[2]
    for t in range(T - 1, -1, -1):
        for r in range(active[t]):
            d, out = dhs[t, r], totals[t, r]
            if t + 1 < T and r < active[t + 1]:
                k, later = retain[t + 1, r], totals[t + 1, r]
                for j in range(H):
                    out[j] = d[j] + k[j] * later[j]
            else:
                out[:] = d


# -- stateful epochs -----------------------------------------------------------------------------
@njit(**OPTS)
def carry_state(c, T, sh, modern):
    """The lru's state (real, imaginary parts) each layer ends the chunk's T steps in becomes
    the next chunk's initial state (network.carry_state carries the other cells' ``hs``)."""
    if modern is not None:
        carry_lru(c, T, sh, modern[3])


@njit(**OPTS)
def carry_lru(c, T, sh, lr):
    if lr is not None:
        buf = sh.buf
        R = buf.hs.shape[3]
        for layer in range(sh.s.layers):
            buf.state0[c, layer, 0, :R] = lr[0][c, layer, 0, T - 1, :R]
            buf.state0[c, layer, 1, :R] = lr[0][c, layer, 1, T - 1, :R]


# -- the layer contract of mingru, minlstm and indrnn (time-major arrays in and out) -----------
def contiguous(w, keys):
    return tuple(np.ascontiguousarray(w[k]) for k in keys)


def zero_grads(w, x):
    """The layer's gradients and ``dx``, zeros, to add into."""
    return {k: np.zeros_like(v) for k, v in w.items()}, np.zeros_like(x)


def add_input_side(w, x, d, grads, dx, active):
    """:func:`input_side` into the layer's ``grads`` (W_ih's and b_ih's) and ``dx``."""
    Wih = np.ascontiguousarray(w["weight_ih"])
    input_side(Wih, x, d, (grads["weight_ih"], grads["bias_ih"]), (True, dx), active)


def totals_of(dhs, retain, hs, active):
    """:func:`retained_totals`, ``[T, N, H]`` like ``hs``."""
    totals = np.zeros_like(hs)
    dhs = np.ascontiguousarray(dhs, hs.dtype)
    retained_totals(dhs, np.ascontiguousarray(retain, hs.dtype), active, totals)
    return totals


class GatedLayer:
    """mingru's or minlstm's layer contract: ``G`` blocks of H rows in W_ih (2: z and h~; 3:
    f, i and h~), the cell's ``scans`` (its module) between the input projection and
    :func:`input_side`. Run over ``x [T, N, I]`` from ``state0 = (h0,)``, step t on the rows
    ``[:active[t]]``."""

    def __init__(self, G, scans):
        self.G, self.scans = G, scans

    def layer_forward(self, w, x, state0, active, nonlinearity=None):
        """``hs``, the states of every step ``(hs,)`` and the cache."""
        x, h0 = np.ascontiguousarray(x), np.ascontiguousarray(state0[0])
        T, N, _ = x.shape
        GH = w["weight_ih"].shape[0]
        hs, gates = np.zeros((T, N, GH // self.G), x.dtype), np.zeros((T, N, GH), x.dtype)
        Wih, b_ih = contiguous(w, ("weight_ih", "bias_ih"))
        affine_steps(Wih, b_ih, x, gates, active)
        self.scans.scan_forward(gates, h0, hs, active)
        return hs, (hs,), (x, hs, gates, h0, active)

    def layer_backward(self, w, cache, dhs):
        """The layer's gradients and ``dx [T, N, I]`` from ``dhs [T, N, H]``."""
        x, hs, gates, h0, active = cache
        grads, dx = zero_grads(w, x)
        d = gates.copy()  # the scan leaves dL/d(pre-activations) in it
        self.scans.scan_backward((hs, d), h0, np.ascontiguousarray(dhs), np.empty_like(h0), active)
        add_input_side(w, x, d, grads, dx, active)
        return grads, dx

    def state_gradients(self, w, cache, dhs):
        """dL/dh_t at every step (through the outputs of step t and every later step), ``[T,
        N, H]``, 0 at padded steps."""
        _, hs, gates, _, active = cache
        H = hs.shape[2]
        if self.G == 2:  # h_t = (1 - z_t) h_{t-1} + ...
            retain = 1.0 - gates[..., :H]
        else:  # h_t = f_t / (f_t + i_t) h_{t-1} + ...  (f + i is 0 at padded steps only)
            f, s = gates[..., :H], gates[..., :H] + gates[..., H : 2 * H]
            retain = np.divide(f, s, out=np.zeros_like(f), where=s > 0)
        return totals_of(dhs, retain, hs, active)


class IndRNNLayer:
    """indrnn's layer contract: its scan between the input projection (into ``hs``) and
    :func:`input_side`; ``nonlinearity`` relu (default) or tanh."""

    def layer_forward(self, w, x, state0, active, nonlinearity="relu"):
        """``hs``, the states of every step ``(hs,)`` and the cache."""
        x, h0 = np.ascontiguousarray(x), np.ascontiguousarray(state0[0])
        T, N, _ = x.shape
        hs = np.zeros((T, N, w["weight_ih"].shape[0]), x.dtype)
        relu = nonlinearity != "tanh"
        Wih, u, b_ih = contiguous(w, ("weight_ih", "weight_hh", "bias_ih"))
        affine_steps(Wih, b_ih, x, hs, active)
        indrnn.scan_forward(u, h0, hs, relu, active)
        return hs, (hs,), (x, hs, h0, relu, active)

    def layer_backward(self, w, cache, dhs):
        """The layer's gradients and ``dx [T, N, I]`` from ``dhs [T, N, H]``."""
        x, hs, h0, relu, active = cache
        grads, dx = zero_grads(w, x)
        da = np.array(dhs, order="C")  # a copy: the scan leaves dL/d(pre-activations) in it
        u = np.ascontiguousarray(w["weight_hh"])
        indrnn.scan_backward(u, (hs, h0), relu, da, grads["weight_hh"], active)
        add_input_side(w, x, da, grads, dx, active)
        return grads, dx

    def state_gradients(self, w, cache, dhs):
        """dL/dh_t at every step (through the outputs of step t and every later step), ``[T,
        N, H]``, 0 at padded steps."""
        _, hs, _, relu, active = cache
        # h_t = act(... + u h_{t-1}): act' = [h > 0] (relu) or 1 - h^2 (tanh)
        slope = (hs > 0).astype(hs.dtype) if relu else 1.0 - hs * hs
        return totals_of(dhs, w["weight_hh"] * slope, hs, active)


MINGRU, MINLSTM, INDRNN = GatedLayer(2, mingru), GatedLayer(3, minlstm), IndRNNLayer()
