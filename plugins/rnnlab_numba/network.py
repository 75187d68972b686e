"""The whole network over one chunk of a batch's rows: forward through the layers, the head and
its loss, and BPTT back down, adding the chunk's gradients to its own buffer.

Why it is shaped so: rows of a batch are independent until their gradients are summed, so a
chunk of rows can run the whole network on one thread with private buffers (layout.Scratch);
the epoch sums the chunks in a fixed order. Cell-generic: ``cell = (bsum, gates, cs, hn,
modern)``, the cell's own buffers, None for the other cells (``bsum``: rnn's b_ih + b_hh;
``cs``: lstm's cell states; ``hn``: gru's W_hn h + b_hn; ``gates``: the gated cells'
activations; ``modern``: the buffers of mingru, minlstm, indrnn and lru, whose layers are
diagonal.py's), and the per-layer functions branch on them: numba prunes an ``if arg is not
None`` branch when it compiles for a None ``arg``, so each signature holds one cell's code.

The initial state comes from ``buf.state0`` (zeros, whose products the kernels' ``h0_zero``
flag skips; a stateful epoch's chunks carry their final state there). Directions are indexed
``ld = layer * directions + direction`` (PyTorch's order); a reverse direction is the same
kernels over each row's steps reversed within its own length (``reversed_input``), and the
layer above (or the head) reads ``[forward ; reverse]`` in forward time, times the dropout
mask, from ``mid`` (``outputs``), as ``rnnlab.nn.model.Model._layers_forward`` composes them.
"""

from . import diagonal, gru, lstm, rnn
from .blocks import OPTS, add_outer, add_product_steps, add_product_t, add_rows, fill_rows
from .fpenv import flush_subnormals, restore
from .jitcache import njit
from .layout import ALIGN, Chunk
from .mathfn import zero
from .softmax import xent_row


@njit(**OPTS)
def weights(s, net, ld):
    """Direction ``ld``'s W_ih, W_hh, b_ih, b_hh (views of theta) and W_ih^T, W_hh^T (of wT)."""
    o_ih, o_hh, o_bih, o_bhh, fan_in, o_t = net.layout[ld]
    G, H, theta = s.gates * s.hidden, s.hidden, net.theta
    Wih = theta[o_ih : o_ih + G * fan_in].reshape((G, fan_in))
    Whh = theta[o_hh : o_hh + G * H].reshape((G, H))
    WhhT = net.wT[o_t : o_t + H * G].reshape((H, G))  # first: its start is aligned (layout.py)
    align = ALIGN // net.wT.itemsize
    o_i = o_t + (H * G + align - 1) // align * align
    WihT = net.wT[o_i : o_i + fan_in * G].reshape((fan_in, G))
    return Wih, Whh, theta[o_bih : o_bih + G], theta[o_bhh : o_bhh + G], WihT, WhhT


@njit(**OPTS)
def grads(s, net, g, ld):
    """Views of the gradient vector ``g``: dW_ih, dW_hh, db_ih, db_hh of direction ``ld``."""
    o_ih, o_hh, o_bih, o_bhh, fan_in, _ = net.layout[ld]
    G, H = s.gates * s.hidden, s.hidden
    return (
        g[o_ih : o_ih + G * fan_in].reshape((G, fan_in)),
        g[o_hh : o_hh + G * H].reshape((G, H)),
        g[o_bih : o_bih + G],
        g[o_bhh : o_bhh + G],
    )


@njit(**OPTS)
def prepare_weights(s, net, bsum, modern):
    """Once per batch: the head's W^T; W_hh^T of every layer and direction into wT (the
    forward products' right-hand factor; backward ones take W as it is), and (rnn) b_ih +
    b_hh into ``bsum``; for the other cells (``modern``), diagonal.prepare."""
    Wh, _, WhT, _, _ = head_weights(s, net, net.theta, s.directions * s.hidden)
    WhT[:, :] = Wh.T
    if modern is None:
        for ld in range(s.layers * s.directions):
            _, Whh, b_ih, b_hh, _, WhhT = weights(s, net, ld)
            WhhT[:, :] = Whh.T
            if bsum is not None:
                for j in range(b_ih.size):
                    bsum[ld, j] = b_ih[j] + b_hh[j]
    diagonal.prepare(s, net, modern)


@njit(**OPTS)
def layer_input(ch, layer, buf, mid):
    """What layer ``layer`` of chunk ``ch`` reads: the inputs, or the layer below's outputs
    (``mid``, with dropout or two directions: ``[forward ; reverse] * mask``, see ``outputs``)."""
    c, T = ch.c, ch.T
    if layer == 0:
        return buf.xb[c, :T]
    if mid is not None:
        return mid[c, layer - 1, :T]
    return buf.hs[c, layer - 1, :T]


@njit(**OPTS)
def reversed_input(ch, layer, sh, bi, mid):
    """Layer ``layer``'s input with each row's steps reversed within its own length (the
    reverse direction's input, step t = step len - 1 - t), in ``bi.rx`` or ``bi.rmid``."""
    c, T, buf = ch.c, ch.T, sh.buf
    inp = layer_input(ch, layer, buf, mid)
    out = bi.rx[c, :T] if layer == 0 else bi.rmid[c, :T]
    reverse_rows(inp, out, ch, sh)
    return out


@njit(**OPTS)
def reverse_rows(src, dst, ch, sh):
    """dst[t, r] = src[len_r - 1 - t, r] for every live row r of step t (len_r: row r's
    length, or T); a map that is its own inverse."""
    T, rows, active = ch.T, ch.rows, sh.buf.active[ch.c]
    for t in range(T):
        for r in range(active[t]):
            Tr = sh.data.lens[rows[r]] if sh.s.lengths else T
            a, b = src[Tr - 1 - t, r], dst[t, r]
            for j in range(a.size):
                b[j] = a[j]


@njit(**OPTS)
def layer_forward(ch, ld, sh, inp, bsum, gates, cs, hn):
    """Direction ``ld`` (= layer * directions + direction) of chunk ``ch`` over its T steps of
    ``inp``, from the state in ``buf.state0`` (zeros when ``ch.h0_zero``: their products are
    skipped)."""
    s, buf, c, T, h0_zero = sh.s, sh.buf, ch.c, ch.T, ch.h0_zero
    Wih, _, b_ih, b_hh, _, WhhT = weights(s, sh.net, ld)
    hs, active = buf.hs[c, ld, :T], buf.active[c]
    h0, c0 = buf.state0[c, ld, 0], buf.state0[c, ld, 1]
    if bsum is not None:
        rnn.forward((Wih, WhhT, bsum[ld]), inp, (h0, h0_zero), s.relu, hs, active)
    if cs is not None:
        out = (hs, cs[c, ld, :T], gates[c, ld, :T])
        lstm.forward((Wih, WhhT, b_ih, b_hh), inp, (h0, c0, h0_zero), out, buf.wide[c, 0], active)
    if hn is not None:
        out = (hs, gates[c, ld, :T], hn[c, ld, :T])
        gru.forward((Wih, WhhT, b_ih, b_hh), inp, (h0, h0_zero), out, buf.wide[c, 0], active)


@njit(**OPTS)
def layer_backward(ch, ld, sh, flow, bsum, gates, cs, hn):
    """BPTT of direction ``ld`` of chunk ``ch``, ``flow = (inp, dh, dx)``: from ``dh`` (dL/dh
    from above); its weight gradients into the chunk's ``buf.g``, dL/d(its input ``inp``) into
    ``dx`` above the first layer. No gradient flows into the initial state (a stateful epoch's
    chunks are cut there)."""
    s, buf, c, T, h0_zero = sh.s, sh.buf, ch.c, ch.T, ch.h0_zero
    inp, dh, dx = flow
    need_dx = ld >= s.directions
    Wih, Whh, _, _, _, _ = weights(s, sh.net, ld)
    W, g = (Wih, Whh), grads(s, sh.net, buf.g[c], ld)
    hs, active = buf.hs[c, ld, :T], buf.active[c]
    h0, c0 = buf.state0[c, ld, 0], buf.state0[c, ld, 1]
    wide, narrow = buf.wide[c], buf.narrow[c]
    flow = (dh, need_dx, dx)
    if bsum is not None:
        scratch = (narrow[0], narrow[1])
        rnn.backward(W, (inp, hs), (h0, h0_zero), s.relu, flow, g, scratch, active)
    if cs is not None:
        seq, scratch = (inp, hs, cs[c, ld, :T], gates[c, ld, :T]), (wide[0], narrow[0], narrow[1])
        lstm.backward(W, seq, (h0, c0, h0_zero), flow, g, scratch, active)
    if hn is not None:
        seq = (inp, hs, gates[c, ld, :T], hn[c, ld, :T])
        scratch = (wide[0], wide[1], narrow[0], narrow[1])
        gru.backward(W, seq, (h0, h0_zero), flow, g, scratch, active)


@njit(**OPTS)
def direction_forward(ch, ld, sh, inp, cell):
    """Direction ``ld`` of chunk ``ch`` forward, whatever the cell (``cell``: its buffers)."""
    forward_of(ch, ld, sh, inp, cell[:4], cell[4])


@njit(**OPTS)
def forward_of(ch, ld, sh, inp, classic, modern):
    """rnn, lstm, gru (``modern`` None: ``classic`` holds their buffers) or diagonal.py's."""
    if modern is None:
        layer_forward(ch, ld, sh, inp, *classic)
    diagonal.layer_forward(ch, ld, sh, inp, modern)


@njit(**OPTS)
def direction_backward(ch, ld, sh, flow, cell):
    """BPTT of direction ``ld`` of chunk ``ch`` (``flow`` as layer_backward's), whatever the
    cell."""
    backward_of(ch, ld, sh, flow, cell[:4], cell[4])


@njit(**OPTS)
def backward_of(ch, ld, sh, flow, classic, modern):
    if modern is None:
        layer_backward(ch, ld, sh, flow, *classic)
    diagonal.layer_backward(ch, ld, sh, flow, modern)


@njit(**OPTS)
def outputs(ch, layer, sh, masks, mid):
    """Layer ``layer``'s outputs as the layer above (or the head) reads them, on the live rows:
    ``mid[t, r] = [h_t forward ; h_t reverse] * mask``, the reverse direction's state at step
    t being its step len_r - 1 - t, and the mask (with dropout, below the top layer) that of
    step ``t0 + t`` and row ``pos + r`` of the epoch's mask array ``[L-1, steps, rows, D*H]``."""
    s, buf, c, T, rows = sh.s, sh.buf, ch.c, ch.T, ch.rows
    D, H, active = s.directions, s.hidden, buf.active[c]
    out = mid[c, layer]
    for t in range(T):
        for r in range(active[t]):
            o, hf = out[t, r], buf.hs[c, layer * D, t, r]
            for j in range(H):
                o[j] = hf[j]
            if D == 2:
                Tr = sh.data.lens[rows[r]] if s.lengths else T
                hr = buf.hs[c, layer * D + 1, Tr - 1 - t, r]
                for j in range(H):
                    o[H + j] = hr[j]
            if masks is not None and layer < s.layers - 1:
                m = masks[layer, ch.t0 + t, ch.pos + r]
                for j in range(o.size):
                    o[j] *= m[j]


@njit(**OPTS)
def drop_backward(ch, layer, buf, masks, dh):
    """dL/d(layer ``layer``'s outputs) = dL/d(dropped outputs) * mask, in place in ``dh``."""
    active = buf.active[ch.c]
    for t in range(ch.T):
        for r in range(active[t]):
            d, m = dh[t, r], masks[layer, ch.t0 + t, ch.pos + r]
            for j in range(d.size):
                d[j] *= m[j]


@njit(**OPTS)
def carry_state(c, T, s, buf, cs):
    """The state each layer ends the chunk's T steps in becomes the next chunk's initial state
    (stateful epochs: every row runs every step, one direction)."""
    R = buf.hs.shape[3]
    for layer in range(s.layers):
        buf.state0[c, layer, 0, :R] = buf.hs[c, layer, T - 1, :R]
        if cs is not None:
            buf.state0[c, layer, 1, :R] = cs[c, layer, T - 1, :R]


@njit(**OPTS)
def head_weights(s, net, g, width):
    """The head's W [O, width], b, W^T (of wT) and their gradients' views of ``g``."""
    n_out, head, theta = s.n_out, net.head, net.theta
    size = n_out * width
    return (
        theta[head[0] : head[0] + size].reshape((n_out, width)),
        theta[head[1] : head[1] + n_out],
        net.wT[head[2] : head[2] + size].reshape((width, n_out)),
        g[head[0] : head[0] + size].reshape((n_out, width)),
        g[head[1] : head[1] + n_out],
    )


@njit(**OPTS)
def target_loss(out, n, k, s, data, coef):
    """The loss of one target from the head's output ``out``, which becomes dL/d(out):
    xent: -log softmax(out)[y], dout = (softmax(out) - onehot(y)) * coef;
    mse: sum (out - y)^2, dout = coef (out - y). ``y`` is target k of sequence n."""
    loss = 0.0
    if s.xent:
        loss = xent_row(out, data.yi[n, k], coef)
    else:
        for o in range(out.size):
            diff = out[o] - data.yf[n, k, o]
            loss += diff * diff
            out[o] = coef * diff
    return loss


@njit(**OPTS)
def head_every(ch, sh, top, dtop):
    """Target "every": the head on every live step of the chunk's rows at once, the loss
    summed over them, and its backward pass (dtop += dout W). Every step's outputs in one pass
    (from the W^T prepare_weights made: no transposition per chunk), then the gradients as
    products over all of them, so that four rows share each load of W and of its gradient
    (per step, the head's rank-1 updates ran at a third of the speed at min-char-rnn's sizes,
    batch 1); dout W in the outer-product form over W itself (blocks.py)."""
    s, buf, c, T, rows = sh.s, sh.buf, ch.c, ch.T, ch.rows
    top, outs, active = top[:T], buf.outs[c, :T], buf.active[c]
    Wh, bh, WhT, gWh, gbh = head_weights(s, sh.net, buf.g[c], top.shape[2])
    for t in range(T):  # out = h W^T + b, with prepare_weights' W^T
        fill_rows(outs[t, : active[t]], bh)
    add_product_steps(WhT, top, outs, active)
    loss = 0.0
    for t in range(T):
        for r in range(active[t]):
            loss += target_loss(outs[t, r], rows[r], ch.t0 + t, s, sh.data, ch.coef)
    R = top.shape[1]
    if T > 0 and active[T - 1] == R:  # every row live at every step: one pass
        d, h, dh = outs.reshape((T * R, s.n_out)), top.reshape((T * R, top.shape[2])), dtop
        add_outer(gWh, d, h)  # dW += dout^T h
        add_rows(gbh, d)  # db += dout
        add_product_t(Wh, d, dh.reshape((T * R, dh.shape[2])))  # dh += dout W
    else:
        for t in range(T):
            a = active[t]
            add_outer(gWh, outs[t, :a], top[t, :a])
            add_rows(gbh, outs[t, :a])
            add_product_t(Wh, outs[t, :a], dtop[t, :a])
    return loss


@njit(**OPTS)
def head_last(ch, r, T, model, row, top, dh):
    """Target "last": head y = h W^T + b on row r's step ``T-1`` (T: its length), its loss,
    ``model = (s, net, data)``, ``row = (out, hv, dv, g)`` the chunk's scratch and gradient;
    and the backward pass: g[W] += dout^T h, g[b] += dout, dh[T-1, r] += dout W. A
    bidirectional model's head reads ``[h_n forward ; h_n reverse] = [top[T-1, :H] ;
    top[0, H:]]`` (gathered in ``hv``, its gradient in ``dv``), as
    ``rnnlab.nn.model.Model._top`` routes it."""
    s, net, data = model
    out, hv, dv, g = row
    H, W = s.hidden, top.shape[2]  # W = D * H
    Wh, bh, _, gWh, gbh = head_weights(s, net, g, W)
    h, d_h = top[T - 1, r], dh[T - 1, r]
    if s.directions == 2:
        for j in range(H):
            hv[j], hv[H + j] = top[T - 1, r, j], top[0, r, H + j]
        dv[:] = 0
        h, d_h = hv, dv
    # out = h W^T + b
    for o in range(s.n_out):
        acc = zero(h[0])
        for j in range(W):
            acc += Wh[o, j] * h[j]
        out[o] = acc + bh[o]
    loss = target_loss(out, ch.rows[r], 0, s, data, ch.coef)
    # dW += dout^T h,  db += dout,  dh = dout W
    for o in range(s.n_out):
        d = out[o]
        gbh[o] += d
        for j in range(W):
            gWh[o, j] += d * h[j]
            d_h[j] += d * Wh[o, j]
    if s.directions == 2:
        for j in range(H):
            dh[T - 1, r, j] += dv[j]
            dh[0, r, H + j] += dv[H + j]
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
def stack_forward(ch, sh, cell, masks, mid, bi):
    """Every layer and direction forward; the outputs each layer above reads into ``mid``."""
    s, D = sh.s, sh.s.directions
    for layer in range(s.layers):
        inp = layer_input(ch, layer, sh.buf, mid)
        direction_forward(ch, layer * D, sh, inp, cell)
        if bi is not None:
            inp = reversed_input(ch, layer, sh, bi, mid)
            direction_forward(ch, layer * D + 1, sh, inp, cell)
        if mid is not None and (layer < s.layers - 1 or bi is not None):
            outputs(ch, layer, sh, masks, mid)


@njit(**OPTS)
def stack_backward(ch, sh, cell, masks, mid, bi):
    """BPTT down the stack from the head's gradient (in ``buf.dh[c]``, or ``bi.dcat[c, 0]``
    with two directions: dL/d[forward ; reverse] outputs of the top layer)."""
    L, buf, c, T = sh.s.layers, sh.buf, ch.c, ch.T
    for layer in range(L - 1, -1, -1):
        if bi is None:
            # dh: dL/d(layer outputs), from the head or the layer above; dx: dL/d(its input)
            first = (L - 1 - layer) % 2 == 0
            dh = buf.dh[c, :T] if first else buf.dh2[c, :T]
            dx = buf.dh2[c, :T] if first else buf.dh[c, :T]
            if masks is not None and layer < L - 1:
                drop_backward(ch, layer, buf, masks, dh)
            inp = layer_input(ch, layer, buf, mid)
            direction_backward(ch, layer, sh, (inp, dh, dx), cell)
        else:
            directions_backward(ch, layer, sh, cell, masks, mid, bi)


@njit(**OPTS)
def directions_backward(ch, layer, sh, cell, masks, mid, bi):
    """BPTT of both directions of layer ``layer`` from ``dcat``, dL/d[forward ; reverse]
    outputs (forward time); dL/d(layer input) = dx forward + dx reverse reversed back, into
    the other ``bi.dcat`` buffer, for the layer below."""
    s, buf, c, T, rows = sh.s, sh.buf, ch.c, ch.T, ch.rows
    now = (s.layers - 1 - layer) % 2
    dcat, dx = bi.dcat[c, now, :T], bi.dcat[c, 1 - now, :T]
    if masks is not None and layer < s.layers - 1:
        drop_backward(ch, layer, buf, masks, dcat)
    # split: dh forward = dcat[t, :H]; dh reverse (its own time) = dcat[len - 1 - t, H:]
    H, active, dhf, dhr = s.hidden, buf.active[c], buf.dh[c, :T], buf.dh2[c, :T]
    for t in range(T):
        for r in range(active[t]):
            Tr = sh.data.lens[rows[r]] if s.lengths else T
            a, b = dcat[t, r], dcat[Tr - 1 - t, r]
            for j in range(H):
                dhf[t, r, j] = a[j]
                dhr[t, r, j] = b[H + j]
    ld = layer * s.directions
    inp = layer_input(ch, layer, buf, mid)
    direction_backward(ch, ld, sh, (inp, dhf, dx), cell)
    inp = reversed_input(ch, layer, sh, bi, mid)
    dxr = bi.dxr[c, :T]
    direction_backward(ch, ld + 1, sh, (inp, dhr, dxr), cell)
    if layer > 0:
        for t in range(T):
            for r in range(active[t]):
                Tr = sh.data.lens[rows[r]] if s.lengths else T
                a, b = dx[t, r], dxr[Tr - 1 - t, r]
                for j in range(a.size):
                    a[j] += b[j]


@njit(**OPTS)
def chunk_loss_grad(ch, sh, cell, masks, mid, bi):
    """Forward, loss and BPTT of chunk ``ch`` (layout.Chunk) of a batch: the sequences
    ``ch.rows`` (each an index into ``data.x [steps, N, I]``, at positions ``ch.pos ..`` of the
    epoch's order) over the steps ``ch.t0 .. ch.t0 + ch.T - 1`` (with lengths: up to the
    chunk's longest sequence). Their gradients go into ``buf.g[c]`` (zeroed first), their loss
    summed over targets into ``buf.loss[c]`` (the epoch divides by the batch's target count;
    ``ch.coef`` is the gradient's scale, 2 / count (mse) or 1 / count (xent)). The initial
    state is ``buf.state0[c]`` (zeros when ``ch.h0_zero``); a stateful epoch
    (``s.chunk_length``) leaves the final state there. ``sh``: layout.Shared; ``cell`` = (bsum,
    gates, cs, hn, modern), the cell's buffers; ``masks`` the epoch's dropout masks, ``mid`` the
    layers' outputs as the layer above reads them (None: it reads hs), ``bi`` the reverse
    direction's scratch (layout.Bidirectional; None: one direction). Subnormal numbers are
    flushed to zero meanwhile (fpenv.py)."""
    csr = flush_subnormals()
    s, data, buf, c, rows = sh.s, sh.data, sh.buf, ch.c, ch.rows
    R, L, T = rows.size, s.layers, ch.T
    if s.lengths:
        T = data.lens[rows[0]]  # the chunk's longest sequence
        ch = Chunk(c, rows, ch.pos, ch.t0, T, ch.h0_zero, ch.coef)
    active = buf.active[c, :T]
    live_rows(rows, data.lens, s.lengths, active)
    xb = buf.xb[c]
    for t in range(T):
        for r in range(active[t]):
            x_in, x_out = data.x[ch.t0 + t, rows[r]], xb[t, r]
            for i in range(x_in.size):
                x_out[i] = x_in[i]
    buf.g[c][:] = 0
    stack_forward(ch, sh, cell, masks, mid, bi)
    if bi is None:
        top, dtop = buf.hs[c, L - 1], buf.dh[c, :T]
    else:
        top, dtop = mid[c, L - 1], bi.dcat[c, 0, :T]
    dtop[:, :R, :] = 0
    if s.every:
        loss = head_every(ch, sh, top, dtop)
    else:
        loss, model = 0.0, (s, sh.net, data)
        row = (buf.out[c], buf.hv[c], buf.dv[c], buf.g[c])  # the chunk's head scratch, gradient
        for r in range(R):
            Tn = data.lens[rows[r]] if s.lengths else T
            loss += head_last(ch, r, Tn, model, row, top, dtop)
    stack_backward(ch, sh, cell, masks, mid, bi)
    if s.chunk_length:
        carry_state(c, T, s, buf, cell[2])
        diagonal.carry_state(c, T, sh, cell[4])
    buf.loss[c] = loss
    restore(csr)
