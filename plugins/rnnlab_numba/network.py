"""The whole network over one chunk of a batch's rows: forward through the layers, the head and
its loss, and BPTT back down, adding the chunk's gradients to its own buffer.

Why it is shaped so: rows of a batch are independent until their gradients are summed, so a
chunk of rows can run the whole network on one thread with private buffers (layout.Scratch);
the epoch sums the chunks in a fixed order. Cell-generic: the per-layer functions branch on
the cell's own buffers, None for the other cells (``bsum``: rnn's b_ih + b_hh; ``cs``: lstm's
cell states; ``hn``: gru's W_hn h + b_hn; ``gates``: the gated cells' activations), and numba
prunes an ``if arg is not None`` branch when it compiles for a None ``arg``: each signature
holds one cell's code.

Room left for what is not fused yet: the initial state comes from ``buf.state0`` (zeros; the
kernels' ``h0_zero`` flag skips its products), so a carried state (stateful chunks) fills it
and passes False; a layer's input is read through ``layer_input`` only, the one place a dropout
mask or a [forward ; reverse] concatenation would apply; a reverse direction is the same
kernels over each row's steps reversed within its own length.
"""

import math

from numba import njit

from . import gru, lstm, rnn
from .blocks import OPTS
from .fpenv import flush_subnormals, restore
from .mathfn import zero


@njit(**OPTS)
def weights(s, net, layer):
    """Layer ``layer``'s W_ih, W_hh, b_ih, b_hh (views of theta) and W_ih^T, W_hh^T (of wT)."""
    o_ih, o_hh, o_bih, o_bhh, fan_in, o_t = net.layout[layer]
    G, H, theta = s.gates * s.hidden, s.hidden, net.theta
    Wih = theta[o_ih : o_ih + G * fan_in].reshape((G, fan_in))
    Whh = theta[o_hh : o_hh + G * H].reshape((G, H))
    WihT = net.wT[o_t : o_t + fan_in * G].reshape((fan_in, G))
    WhhT = net.wT[o_t + fan_in * G : o_t + (fan_in + H) * G].reshape((H, G))
    return Wih, Whh, theta[o_bih : o_bih + G], theta[o_bhh : o_bhh + G], WihT, WhhT


@njit(**OPTS)
def grads(s, net, g, layer):
    """Views of the gradient vector ``g``: dW_ih, dW_hh, db_ih, db_hh of layer ``layer``."""
    o_ih, o_hh, o_bih, o_bhh, fan_in, _ = net.layout[layer]
    G, H = s.gates * s.hidden, s.hidden
    return (
        g[o_ih : o_ih + G * fan_in].reshape((G, fan_in)),
        g[o_hh : o_hh + G * H].reshape((G, H)),
        g[o_bih : o_bih + G],
        g[o_bhh : o_bhh + G],
    )


@njit(**OPTS)
def prepare_weights(s, net, bsum):
    """Once per batch: W_ih^T, W_hh^T of every layer into wT, and (rnn) b_ih + b_hh into
    ``bsum``."""
    for layer in range(s.layers):
        Wih, Whh, b_ih, b_hh, WihT, WhhT = weights(s, net, layer)
        WihT[:, :] = Wih.T
        WhhT[:, :] = Whh.T
        if bsum is not None:
            for j in range(b_ih.size):
                bsum[layer, j] = b_ih[j] + b_hh[j]


@njit(**OPTS)
def layer_input(c, layer, T, buf, mid):
    """What layer ``layer`` of chunk ``c`` reads: the inputs, or the layer below's outputs
    (``mid``, when there is dropout: those outputs times their masks)."""
    if layer == 0:
        return buf.xb[c, :T]
    if mid is not None:
        return mid[c, layer - 1, :T]
    return buf.hs[c, layer - 1, :T]


@njit(**OPTS)
def layer_forward(c, layer, T, h0_zero, s, net, buf, bsum, gates, cs, hn, mid):
    """Layer ``layer`` of chunk ``c`` over its first T steps from the state in
    ``buf.state0`` (zeros when ``h0_zero``: their products are skipped)."""
    Wih, Whh, b_ih, b_hh, _, _ = weights(s, net, layer)
    inp = layer_input(c, layer, T, buf, mid)
    hs, active = buf.hs[c, layer, :T], buf.active[c]
    h0, c0 = buf.state0[c, layer, 0], buf.state0[c, layer, 1]
    if bsum is not None:
        rnn.forward(Wih, Whh, bsum[layer], inp, h0, h0_zero, s.relu, hs, active)
    if cs is not None:
        lstm.forward(
            Wih, Whh, b_ih, b_hh, inp, h0, c0, h0_zero, hs, cs[c, layer, :T],
            gates[c, layer, :T], buf.wide[c, 0], active,
        )  # fmt: skip
    if hn is not None:
        gru.forward(
            Wih, Whh, b_ih, b_hh, inp, h0, h0_zero, hs, gates[c, layer, :T], hn[c, layer, :T],
            buf.wide[c, 0], active,
        )  # fmt: skip


@njit(**OPTS)
def layer_backward(c, layer, T, h0_zero, s, net, buf, dh, dx, g, bsum, gates, cs, hn, mid):
    """BPTT of layer ``layer`` of chunk ``c`` from ``dh`` (dL/dh from above); its weight
    gradients into ``g``, dL/d(its input) into ``dx`` (not for the first layer). No gradient
    flows into the initial state (a stateful epoch's chunks are cut there)."""
    _, _, _, _, WihT, WhhT = weights(s, net, layer)
    gWih, gWhh, gb_ih, gb_hh = grads(s, net, g, layer)
    inp = layer_input(c, layer, T, buf, mid)
    hs, active = buf.hs[c, layer, :T], buf.active[c]
    h0, c0 = buf.state0[c, layer, 0], buf.state0[c, layer, 1]
    wide, narrow, need_dx = buf.wide[c], buf.narrow[c], layer > 0
    if bsum is not None:
        rnn.backward(
            WihT, WhhT, inp, hs, h0, h0_zero, s.relu, dh, need_dx, dx, gWih, gWhh, gb_ih,
            gb_hh, narrow[0], narrow[1], active,
        )  # fmt: skip
    if cs is not None:
        lstm.backward(
            WihT, WhhT, inp, hs, cs[c, layer, :T], gates[c, layer, :T], h0, c0, h0_zero, dh,
            need_dx, dx, gWih, gWhh, gb_ih, gb_hh, wide[0], narrow[0], narrow[1], active,
        )  # fmt: skip
    if hn is not None:
        gru.backward(
            WihT, WhhT, inp, hs, gates[c, layer, :T], hn[c, layer, :T], h0, h0_zero, dh,
            need_dx, dx, gWih, gWhh, gb_ih, gb_hh, wide[0], wide[1], narrow[0], narrow[1],
            active,
        )  # fmt: skip


@njit(**OPTS)
def drop(c, layer, T, t0, pos, buf, masks, mid):
    """Dropout after layer ``layer``: ``mid = hs * mask`` on the live rows, the masks of steps
    ``t0 + t`` and rows ``pos + r`` of the epoch's mask array ``[L-1, steps, rows, H]``."""
    hs, out, active = buf.hs[c, layer], mid[c, layer], buf.active[c]
    for t in range(T):
        for r in range(active[t]):
            h, o, m = hs[t, r], out[t, r], masks[layer, t0 + t, pos + r]
            for j in range(h.size):
                o[j] = h[j] * m[j]


@njit(**OPTS)
def drop_backward(c, layer, T, t0, pos, buf, masks, dh):
    """dL/d(layer ``layer``'s outputs) = dL/d(dropped outputs) * mask, in place in ``dh``."""
    active = buf.active[c]
    for t in range(T):
        for r in range(active[t]):
            d, m = dh[t, r], masks[layer, t0 + t, pos + r]
            for j in range(d.size):
                d[j] *= m[j]


@njit(**OPTS)
def carry_state(c, T, s, buf, cs):
    """The state each layer ends the chunk's T steps in becomes the next chunk's initial state
    (stateful epochs: every row runs every step)."""
    R = buf.hs.shape[3]
    for layer in range(s.layers):
        buf.state0[c, layer, 0, :R] = buf.hs[c, layer, T - 1, :R]
        if cs is not None:
            buf.state0[c, layer, 1, :R] = cs[c, layer, T - 1, :R]


@njit(**OPTS)
def head_loss(n, r, T, t0, top, s, net, data, coef, out, dh, g):
    """Head y = h W^T + b on row r's target steps, the loss summed over them, and the backward
    pass: g[W] += dout^T h, g[b] += dout, dh[t, r] = dout W. ``n`` is the row's sequence index
    and ``T`` its length: the targets are its steps ``0..T-1`` ("every"; targets ``t0 + t`` of
    the stream in a stateful epoch) or step ``T-1``."""
    H, n_out, head, theta = s.hidden, s.n_out, net.head, net.theta
    Wh = theta[head[0] : head[0] + n_out * H].reshape((n_out, H))
    gWh = g[head[0] : head[0] + n_out * H].reshape((n_out, H))
    bh, gbh = theta[head[1] : head[1] + n_out], g[head[1] : head[1] + n_out]
    loss = 0.0
    for k in range(T if s.every else 1):
        t = k if s.every else T - 1
        h = top[t, r]
        # out = h W^T + b
        for o in range(n_out):
            acc = zero(h[0])
            for j in range(H):
                acc += Wh[o, j] * h[j]
            out[o] = acc + bh[o]
        if s.xent:  # -log softmax(out)[y];  dout = (softmax(out) - onehot(y)) / count
            m = out[0]
            for o in range(1, n_out):
                m = max(m, out[o])
            total = 0.0
            for o in range(n_out):
                total += math.exp(out[o] - m)
            lse = math.log(total)
            label = data.yi[n, t0 + k]
            loss -= out[label] - m - lse
            for o in range(n_out):
                out[o] = math.exp(out[o] - m - lse) * coef
            out[label] -= coef
        else:  # (out - y)^2;  dout = 2 (out - y) / count
            for o in range(n_out):
                diff = out[o] - data.yf[n, t0 + k, o]
                loss += diff * diff
                out[o] = coef * diff
        # dW += dout^T h,  db += dout,  dh = dout W
        d_h = dh[t, r]
        for o in range(n_out):
            d = out[o]
            gbh[o] += d
            for j in range(H):
                gWh[o, j] += d * h[j]
                d_h[j] += d * Wh[o, j]
    return loss


@njit(**OPTS)
def live_rows(rows, lens, ragged, active):
    """``active[t]``: how many of the rows take part in step t (with lengths, ``ragged``, the
    rows are sorted longest first); ``active`` covers the rows' longest sequence."""
    if not ragged:
        active[:] = rows.size
        return
    active[:] = 0
    for r in range(rows.size):
        for t in range(lens[rows[r]]):
            active[t] += 1


@njit(**OPTS)
def chunk_loss_grad(c, rows, pos, t0, T, h0_zero, s, net, data, buf, coef, cell, masks, mid):
    """Forward, loss and BPTT of the sequences ``rows`` (chunk ``c`` of a batch, each an index
    into ``data.x [steps, N, I]``, at positions ``pos ..`` of the epoch's order) over the steps
    ``t0 .. t0 + T - 1`` (with lengths: up to the chunk's longest sequence): their gradients
    into ``buf.g[c]`` (zeroed first), their loss summed over targets into ``buf.loss[c]`` (the
    epoch divides by the batch's target count; ``coef`` is the gradient's scale, 2 / count
    (mse) or 1 / count (xent)). The initial state is ``buf.state0[c]`` (zeros when
    ``h0_zero``); a stateful epoch (``s.chunk_length``) leaves the final state there. ``cell``
    = (bsum, gates, cs, hn), the cell's buffers; ``masks`` the epoch's dropout masks and
    ``mid`` the dropped outputs (both None without dropout). Subnormal numbers are flushed to
    zero meanwhile (fpenv.py)."""
    csr = flush_subnormals()
    bsum, gates, cs, hn = cell
    R, L = rows.size, s.layers
    if s.lengths:
        T = data.lens[rows[0]]  # the chunk's longest sequence
    active = buf.active[c, :T]
    live_rows(rows, data.lens, s.lengths, active)
    xb = buf.xb[c]
    for t in range(T):
        for r in range(active[t]):
            x_in, x_out = data.x[t0 + t, rows[r]], xb[t, r]
            for i in range(x_in.size):
                x_out[i] = x_in[i]
    g = buf.g[c]
    g[:] = 0
    for layer in range(L):  # forward through the stack
        layer_forward(c, layer, T, h0_zero, s, net, buf, bsum, gates, cs, hn, mid)
        if masks is not None and layer < L - 1:
            drop(c, layer, T, t0, pos, buf, masks, mid)
    dh, dx = buf.dh[c, :T], buf.dh2[c, :T]
    dh[:, :R, :] = 0
    loss = 0.0
    for r in range(R):
        n = rows[r]
        Tn = data.lens[n] if s.lengths else T
        top = buf.hs[c, L - 1]
        loss += head_loss(n, r, Tn, t0, top, s, net, data, coef, buf.out[c], dh, g)
    for layer in range(L - 1, -1, -1):  # BPTT down the stack; dx gets dL/d(layer input)
        layer_backward(c, layer, T, h0_zero, s, net, buf, dh, dx, g, bsum, gates, cs, hn, mid)
        if masks is not None and layer > 0:
            drop_backward(c, layer - 1, T, t0, pos, buf, masks, dx)
        dh, dx = dx, dh
    if s.chunk_length:
        carry_state(c, T, s, buf, cs)
    buf.loss[c] = loss
    restore(csr)
