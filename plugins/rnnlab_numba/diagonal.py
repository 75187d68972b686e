"""The fused epoch's layers for the cells whose recurrence is elementwise (mingru, minlstm,
indrnn, lru): their tensors read from the flat parameter vector by the layout (layout.py: the
offsets of a layer's tensors in the cell spec's order, then its fan_in), and their kernels
(mingru.py, minlstm.py, indrnn.py, lru.py) run on a chunk's buffers, as network.py runs
rnn, lstm and gru.

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

from numba import types
from numba.extending import overload

from . import indrnn, lru, mingru, minlstm
from .blocks import OPTS
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
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        W = input_gated(sh.net.theta, sh.net, ld, 2 * s.hidden)
        h0, hs, g = buf.state0[c, ld, 0], buf.hs[c, ld, :T], gates[c, ld, :T]
        mingru.forward(W, inp, h0, hs, g, buf.active[c])


@njit(**OPTS)
def mingru_backward(ch, ld, sh, flow, gates):
    if gates is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        inp, dh, dx = flow
        W = input_gated(sh.net.theta, sh.net, ld, 2 * s.hidden)
        grads = input_gated(buf.g[c], sh.net, ld, 2 * s.hidden)
        h0, seq = buf.state0[c, ld, 0], (inp, buf.hs[c, ld, :T], gates[c, ld, :T])
        flow = (dh, ld >= s.directions, dx)
        mingru.backward(W, seq, h0, flow, grads, buf.narrow[c, 0], buf.active[c])


@njit(**OPTS)
def minlstm_forward(ch, ld, sh, inp, gates):
    if gates is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        W = input_gated(sh.net.theta, sh.net, ld, 3 * s.hidden)
        h0, hs, g = buf.state0[c, ld, 0], buf.hs[c, ld, :T], gates[c, ld, :T]
        minlstm.forward(W, inp, h0, hs, g, buf.active[c])


@njit(**OPTS)
def minlstm_backward(ch, ld, sh, flow, gates):
    if gates is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        inp, dh, dx = flow
        W = input_gated(sh.net.theta, sh.net, ld, 3 * s.hidden)
        grads = input_gated(buf.g[c], sh.net, ld, 3 * s.hidden)
        h0, seq = buf.state0[c, ld, 0], (inp, buf.hs[c, ld, :T], gates[c, ld, :T])
        flow = (dh, ld >= s.directions, dx)
        minlstm.backward(W, seq, h0, flow, grads, buf.narrow[c, 0], buf.active[c])


@njit(**OPTS)
def indrnn_forward(ch, ld, sh, inp, marker):
    if marker is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        W = indrnn_tensors(sh.net.theta, sh.net, ld, s.hidden)
        hs = buf.hs[c, ld, :T]
        indrnn.forward(W, inp, buf.state0[c, ld, 0], hs, s.relu, buf.active[c])


@njit(**OPTS)
def indrnn_backward(ch, ld, sh, flow, marker):
    if marker is not None:
        s, buf, c, T = sh.s, sh.buf, ch.c, ch.T
        inp, dh, dx = flow
        W = indrnn_tensors(sh.net.theta, sh.net, ld, s.hidden)
        grads = indrnn_tensors(buf.g[c], sh.net, ld, s.hidden)
        seq = (inp, buf.hs[c, ld, :T], buf.state0[c, ld, 0])
        flow = (dh, ld >= s.directions, dx)
        indrnn.backward(W, seq, s.relu, flow, grads, buf.active[c])


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
