"""Why RNNs are hard to train, measured: gradient flow through time and recurrent health.

Gradient flow: the norm of dL/dh_t of the top layer at every step t, the TOTAL gradient (through
the head at step t and through every later step of the recurrence), on a fixed seeded sample of
validation sequences (Pascanu, Mikolov & Bengio 2013 plot exactly these norms).

It is computed from what every backend already returns, ``layer_forward`` and ``layer_backward``
(no new backend method), by one exact trick: the top layer is run with ``P = G*H`` extra inputs
that are always 0 and whose input weights are the identity,

    x'_t = [x_t ; 0]      W'_ih = [W_ih | I]      so  x'_t W'_ih^T = x_t W_ih^T  (unchanged)

and the layer's ``dx`` for those inputs is then dL/da_t, the gradient of the input-side
pre-activations of step t. The total hidden gradient follows backwards from the last step:

    rnn, lstm:  dL/dh_t = d_t + dL/da_{t+1} W_hh
    gru:        dL/dh_t = d_t + z_{t+1} * dL/dh_{t+1} + [dL/da^r, dL/da^z, r * dL/da^n]_{t+1} W_hh

where d_t is the gradient the head puts on h_t directly (0 at all but the last step for a task
with target "last"). The gru's r and z come from :func:`activations`, which recomputes each
cell's gates from its inputs and hidden states with the equations of torch.nn.RNN/LSTM/GRU.

Variable-length sequences (``Split.lengths``, packed semantics): the top layer runs with the
lengths, the head's gradient enters a target-"last" sequence at its own last step, and the
recursion never crosses a sequence's end: at its padded steps the head puts no gradient and the
backend's dx (so dL/da) is 0, so the recursion, started at the last step, gives dL/dh_t = 0
there (no h_t exists) and adds nothing to its last valid step.

Any other cell, and the bidirectional models of every cell: each direction's total gradient
dL/d(state)_t comes from the backend's ``state_gradients`` (the reference's kernels compute it
for every built-in cell and for a plugin's cell whose numpy kernels define it); for a complex
state (the lru) its norm is that of the complex gradient dL/dRe(h) + i dL/dIm(h). A
bidirectional model gives one curve per direction, both over steps in their original order.

Recurrent health, every ``health_every`` epochs: what retention means for the cell. Matrix
recurrences (rnn, lstm, gru, and a plugin's cell with a [G*H, H] ``weight_hh``): the spectral
radius (largest |eigenvalue|) of every layer's W_hh, per gate block; a cell's own
``CellSpec.retention`` otherwise (lru: |lambda| min/median/max; indrnn: |u|); the mean retain
gate of cells that declare one (mingru: 1 - z; minlstm: f' = f/(f+i)); the fraction of
saturated activations (|tanh| > 0.99, sigmoid gates < 0.01 or > 0.99) and, for lstm, the mean
forget gate, on the first :data:`HEALTH_SIZE` sequences of the same sample. A measure a cell
does not define is left out with a note; nothing here can fail a run.

Nothing here draws from the run's generators or touches its parameters: a run's numbers are the
same with or without diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..experiment.schema import DiagnosticsConfig
from ..nn.lengths import valid_steps
from ..nn.model import Model, layer_weights, loss_and_grad, reversal, reverse_steps, target_mask
from ..specs import Dataset, Split

SEED_KEY = 19  # spawn key of the sample's generator: independent of the run's own streams
# the cells whose equations :func:`activations` and :func:`hidden_gradients` know; a cell a
# plugin adds gets only the spectral radii of its W_hh blocks
KNOWN_CELLS = ("rnn", "lstm", "gru")
GATE_NAMES = {"rnn": ("hh",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
SIGMOID_GATES = {"rnn": (), "lstm": ("i", "f", "o"), "gru": ("r", "z")}
TANH_GATES = {"rnn": ("h",), "lstm": ("g",), "gru": ("n",)}
SATURATED_TANH, SATURATED_SIGMOID = 0.99, 0.01
PROBE_BYTES = 64 * 2**20  # bound on one pass's probe inputs (see gradient_norm_by_step)
HEALTH_SIZE = 32  # sequences of the sample the saturation and forget-gate statistics use


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


# -- the sample --------------------------------------------------------------------------------
@dataclass
class Sample:
    """The sequences diagnostics are measured on, fixed for a run, and each one's initial state
    (None: zeros; a stateful task's chunks start from the state carried through the stream)."""

    split: Split
    target: str
    loss: str
    state: list[tuple[np.ndarray, ...]] | None = None


def sample_generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SEED_KEY,)))


def validation_sample(model: Model, dataset: Dataset, size: int, seed: int) -> Sample:
    """Up to ``size`` validation sequences, chosen with the seed (kept in their order). For a
    stateful dataset the validation stream is cut into chunks of ``chunk_length`` steps, each
    starting from the state the model carries to it through the stream."""
    val, rng = dataset.splits["val"], sample_generator(seed)
    k = dataset.chunk_length
    if not k:
        n = len(val)
        idx = np.sort(rng.choice(n, size=min(size, n), replace=False))
        y = val.y[idx] if dataset.target == "last" else val.y[:, idx]
        lengths = None if val.lengths is None else val.lengths[idx]
        return Sample(Split(val.x[:, idx], y, lengths), dataset.target, dataset.loss)
    k = min(k, val.x.shape[0])  # a stream shorter than a chunk is one chunk
    starts = np.arange(0, val.x.shape[0] - k + 1, k)  # whole chunks only
    chosen = np.sort(rng.choice(len(starts), size=min(size, len(starts)), replace=False))
    states, state, wanted = [], None, set(chosen.tolist())
    for c in range(chosen[-1] + 1):  # walk the stream to the last chosen chunk
        if c in wanted:
            states.append(state if state is not None else model.zero_state(1))
        _, state = model.outputs(val.x[starts[c] : starts[c] + k], "every", state)
    x = np.concatenate([val.x[starts[c] : starts[c] + k] for c in chosen], axis=1)
    y = np.concatenate([val.y[starts[c] : starts[c] + k] for c in chosen], axis=1)
    stacked = [
        tuple(
            np.concatenate([s[layer][j] for s in states], axis=0)
            for j in range(len(states[0][layer]))
        )
        for layer in range(len(states[0]))
    ]
    return Sample(Split(x, y), "every", dataset.loss, stacked)


# -- the gates, recomputed ---------------------------------------------------------------------
def activations(
    cell: str,
    w: dict[str, np.ndarray],
    x: np.ndarray,
    h_prev: np.ndarray,
    nonlinearity: str = "tanh",
) -> dict[str, np.ndarray]:
    """Every step's activated gates of one layer from its inputs ``x [T, N, I]`` and the hidden
    states they follow ``h_prev [T, N, H]`` (h_0 .. h_{T-1}), as torch.nn.RNN/LSTM/GRU define
    them; keys: rnn "h"; lstm "i", "f", "g", "o"; gru "r", "z", "n"."""
    H = h_prev.shape[-1]
    a_in = x @ w["weight_ih"].T + w["bias_ih"]  # x_t W_ih^T + b_ih
    a_rec = h_prev @ w["weight_hh"].T + w["bias_hh"]  # h_{t-1} W_hh^T + b_hh
    if cell == "rnn":
        a = a_in + a_rec
        return {"h": np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)}
    if cell == "lstm":
        a = a_in + a_rec
        return {
            "i": sigmoid(a[..., :H]),
            "f": sigmoid(a[..., H : 2 * H]),
            "g": np.tanh(a[..., 2 * H : 3 * H]),
            "o": sigmoid(a[..., 3 * H :]),
        }
    # gru: r, z = sigmoid(a_in + a_rec);  n = tanh(a_in_n + r * a_rec_n)
    r = sigmoid(a_in[..., :H] + a_rec[..., :H])
    z = sigmoid(a_in[..., H : 2 * H] + a_rec[..., H : 2 * H])
    return {"r": r, "z": z, "n": np.tanh(a_in[..., 2 * H :] + r * a_rec[..., 2 * H :])}


def _lengths_kwargs(lengths) -> dict:
    """``layer_forward``'s ``lengths`` keyword, passed only when there are lengths."""
    return {} if lengths is None else {"lengths": lengths}


def _input_of_top_layer(model: Model, x: np.ndarray, state, lengths=None) -> np.ndarray:
    """Run every layer but the top one; return the top layer's input."""
    cfg, h = model.cfg, x
    for layer in range(cfg.layers - 1):
        h, _, _ = model.backend.layer_forward(
            cfg.cell,
            layer_weights(model.params, layer),
            h,
            state[layer],
            nonlinearity=cfg.nonlinearity,
            **_lengths_kwargs(lengths),
        )
    return h


# -- gradient flow -----------------------------------------------------------------------------
def hidden_gradients(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    loss: str,
    target: str,
    state=None,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """dL/dh_t of the top layer for every step and sequence, ``[T, N, H]``: the total gradient
    of ``model.loss(x, y, loss, target, state, lengths)`` with respect to the top layer's hidden
    state (see the module's docstring for how it comes out of the backend's own backward pass).
    With ``lengths`` it is 0 at each sequence's padded steps (there is no h_t there)."""
    cfg, params, backend = model.cfg, model.params, model.backend
    state = state if state is not None else model.zero_state(x.shape[1])
    top = cfg.layers - 1
    h_in = _input_of_top_layer(model, x, state, lengths)
    w = layer_weights(params, top)
    T, N, I = h_in.shape
    P = w["weight_ih"].shape[0]  # G*H probe inputs, one per input-side pre-activation
    probe = dict(w, weight_ih=np.concatenate([w["weight_ih"], np.eye(P, dtype=h_in.dtype)], 1))
    x_probe = np.concatenate([h_in, np.zeros((T, N, P), h_in.dtype)], axis=-1)
    hs, final, cache = backend.layer_forward(
        cfg.cell,
        probe,
        x_probe,
        state[top],
        nonlinearity=cfg.nonlinearity,
        **_lengths_kwargs(lengths),
    )
    W, b = params["head.weight"], params["head.bias"]
    last = hs[-1] if lengths is None else final[0]  # each sequence's own final state
    out = (last if target == "last" else hs) @ W.T + b
    _, dout = loss_and_grad(out, y, loss, target_mask(target, lengths, T))
    direct = np.zeros_like(hs)  # d_t: what the head puts on h_t
    if target == "last":
        direct[T - 1 if lengths is None else lengths - 1, np.arange(N)] = dout @ W
    else:
        direct[:] = dout @ W  # 0 at padded steps: the masked loss's gradient is 0 there
    _, dx = backend.layer_backward(cfg.cell, probe, cache, direct)
    da = dx[..., I:]  # dL/da_t, the input-side pre-activations
    return _through_time(cfg.cell, w, h_in, state[top][0], hs, direct, da)


def _stack_inputs(model: Model, x: np.ndarray, state, lengths=None) -> list[np.ndarray]:
    """The input of every layer (``[forward ; reverse]`` outputs of the one below), run
    without dropout."""
    D, rev = model.directions, reversal(lengths, x.shape[0]) if model.directions == 2 else None
    inputs, h = [x], x
    for layer in range(model.cfg.layers - 1):
        out, _, _ = model._layer_forward(layer, False, h, state[layer * D], lengths)
        if D == 2:
            back, _, _ = model._layer_forward(
                layer, True, reverse_steps(h, rev), state[layer * D + 1], lengths
            )
            out = np.concatenate([out, reverse_steps(back, rev)], axis=-1)
        inputs.append(out)
        h = out
    return inputs


def direction_gradients(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    loss: str,
    target: str,
    state=None,
    lengths: np.ndarray | None = None,
) -> list[np.ndarray]:
    """dL/d(state)_t of the top layer, one ``[T, N, H]`` array per direction (the reverse
    direction's over steps in their original order; complex for a complex state): the
    unidirectional rnn, lstm and gru by :func:`hidden_gradients`, everything else through the
    backend's ``state_gradients``. 0 at padded steps."""
    cfg = model.cfg
    if cfg.cell in KNOWN_CELLS and model.directions == 1:
        return [hidden_gradients(model, x, y, loss, target, state, lengths)]
    state = state if state is not None else model.zero_state(x.shape[1])
    D, H, top = model.directions, cfg.hidden_size, cfg.layers - 1
    rev = reversal(lengths, x.shape[0]) if D == 2 else None
    h_in = _stack_inputs(model, x, state, lengths)[top]
    runs = []
    for reverse in (False, True)[:D]:
        xd = reverse_steps(h_in, rev) if reverse else h_in
        runs.append(
            (xd, *model._layer_forward(top, reverse, xd, state[top * D + reverse], lengths))
        )
    hs = runs[0][1]
    if D == 2:
        hs = np.concatenate([hs, reverse_steps(runs[1][1], rev)], axis=-1)
    out = model._head(model._top(hs, None, target, lengths))
    _, dout = loss_and_grad(out, y, loss, target_mask(target, lengths, x.shape[0]))
    dh = model._output_gradient(hs, dout, target, lengths)
    totals = []
    for reverse, (xd, _, _, cache) in zip((False, True), runs, strict=False):
        dhs = reverse_steps(dh[..., H:], rev) if reverse else np.ascontiguousarray(dh[..., :H])
        w = layer_weights(model.params, top, reverse, model.cell)
        if cfg.cell in KNOWN_CELLS:
            total = _probe_total(model, w, xd, state[top * D + reverse], dhs, lengths)
        else:
            total = model.backend.state_gradients(cfg.cell, w, cache, dhs)
            if total is None:
                raise ValueError(f"the kernels of cell {cfg.cell!r} give no state_gradients")
        totals.append(reverse_steps(total, rev) if reverse else total)
    return totals


def _probe_total(model: Model, w, h_in, state0, direct, lengths) -> np.ndarray:
    """:func:`hidden_gradients`' recursion for one direction of the top layer of a cell
    rnnlab knows, from the gradient ``direct`` the head puts on each step's output."""
    cfg, backend = model.cfg, model.backend
    T, N, I = h_in.shape
    P = w["weight_ih"].shape[0]
    probe = dict(w, weight_ih=np.concatenate([w["weight_ih"], np.eye(P, dtype=h_in.dtype)], 1))
    x_probe = np.concatenate([h_in, np.zeros((T, N, P), h_in.dtype)], axis=-1)
    hs, _, cache = backend.layer_forward(
        cfg.cell, probe, x_probe, state0, nonlinearity=cfg.nonlinearity, **_lengths_kwargs(lengths)
    )
    _, dx = backend.layer_backward(cfg.cell, probe, cache, direct)
    return _through_time(cfg.cell, w, h_in, state0[0], hs, direct, dx[..., I:])


def _through_time(cell: str, w, h_in, h0, hs, direct, da) -> np.ndarray:
    """dL/dh_t from what the head puts on each step (``direct``) and the gradients of the
    input-side pre-activations ``da``: the recursion back through W_hh (and the GRU's gates,
    whose reset gate scales the recurrent part of the candidate)."""
    W_hh = w["weight_hh"]
    total = np.empty_like(hs)
    total[-1] = direct[-1]
    if cell == "gru":
        H = hs.shape[-1]
        h_prev = np.concatenate([h0[None], hs[:-1]], axis=0)
        gates = activations("gru", w, h_in, h_prev)
        r, z = gates["r"], gates["z"]
        for t in range(hs.shape[0] - 2, -1, -1):
            d_rec = da[t + 1].copy()
            d_rec[:, 2 * H :] *= r[t + 1]
            total[t] = direct[t] + z[t + 1] * total[t + 1] + d_rec @ W_hh
    else:
        total[:-1] = direct[:-1] + da[1:] @ W_hh
    return total


def _squares(dh: np.ndarray) -> np.ndarray:
    """Per step, the squared norm of ``dh [T, N, H]`` (of the complex gradient when complex)."""
    if np.iscomplexobj(dh):
        return np.einsum("tnh,tnh->t", dh.real, dh.real, dtype=np.float64) + np.einsum(
            "tnh,tnh->t", dh.imag, dh.imag, dtype=np.float64
        )
    return np.einsum("tnh,tnh->t", dh, dh, dtype=np.float64)


def gradient_norm_by_step(model: Model, sample: Sample) -> list[float]:
    """:func:`gradient_norms` of the forward direction."""
    return gradient_norms(model, sample)[0]


def gradient_norms(model: Model, sample: Sample) -> list[list[float]]:
    """Per direction (forward, then reverse when bidirectional), one value per step, step 1
    first: sqrt(N) * ||dL/dh_t||, the norm over the whole
    ``[N, H]`` slice of step t for the sample's mean loss L, scaled by sqrt(N) so that it does
    not depend on the sample's size (for a loss that is a mean of per-sequence losses L_n it is
    the root mean square over sequences of ||dL_n/dh_t||).

    Variable-length sequences: the norm at step t is over the N_t sequences still running at
    t (t < lengths[n]; the others have no h_t), scaled by N / sqrt(N_t), i.e. the root mean
    square over the running sequences of ||N dL/dh_t[n]|| (sqrt(N) * ||dL/dh_t|| when all
    run). Steps where no sequence of the sample runs (after its longest one) are absent: the
    list has max(lengths) values, not T, so no 0 or NaN stands for a step that does not exist.

    The sample goes through in slices of sequences whose probe inputs fit in
    :data:`PROBE_BYTES`; a slice contributes its own mean loss's gradient times its share of
    the sample's targets (n / N of the sequences, or with lengths and target "every" its share
    of the valid steps)."""
    s = sample.split
    T, N = s.x.shape[:2]
    lengths = s.lengths
    if lengths is not None:
        T = int(lengths.max())  # no sequence runs after it
    valid = None if lengths is None else valid_steps(lengths, T)
    H = model.cfg.hidden_size
    width = model.cell.gates * H + max(s.x.shape[2], H)  # probe + input of the top layer
    per = max(1, PROBE_BYTES // (T * width * s.x.dtype.itemsize))
    squares = np.zeros((model.directions, T))
    for start in range(0, N, per):
        rows = slice(start, start + per)
        y = s.y[rows] if sample.target == "last" else s.y[:, rows]
        state = (
            None
            if sample.state is None
            else [tuple(a[rows] for a in layer) for layer in sample.state]
        )
        if lengths is None:
            dhs = direction_gradients(model, s.x[:, rows], y, sample.loss, sample.target, state)
            share = dhs[0].shape[1] / N
        else:
            y = y if sample.target == "last" else y[:T]
            dhs = direction_gradients(
                model, s.x[:T, rows], y, sample.loss, sample.target, state, lengths[rows]
            )
            if sample.target == "last":
                share = dhs[0].shape[1] / N
            else:
                share = int(valid[:, rows].sum()) / int(valid.sum())
        for d, dh in enumerate(dhs):
            squares[d] += share * share * _squares(dh)
    if lengths is None:
        return [[float(v) for v in np.sqrt(N) * np.sqrt(sq)] for sq in squares]
    running = valid.sum(axis=1)  # N_t >= 1 for every t < max(lengths)
    return [[float(v) for v in N / np.sqrt(running) * np.sqrt(sq)] for sq in squares]


def flow_ratio(norms: list[float]) -> float | None:
    """||dL/dh_1|| / ||dL/dh_T||, or None when the last step's norm is 0."""
    return norms[0] / norms[-1] if norms and norms[-1] > 0 else None


# -- recurrent health --------------------------------------------------------------------------
def _directions(model: Model):
    """``(layer, reverse, name)`` of every layer and direction: ``l0``, ``l0_reverse``, ..."""
    for layer in range(model.cfg.layers):
        for reverse in (False, True)[: model.directions]:
            yield layer, reverse, f"l{layer}_reverse" if reverse else f"l{layer}"


def has_matrix_recurrence(model: Model) -> bool:
    """Whether the cell's recurrence is a ``weight_hh [G*H, H]`` matrix (rnn, lstm, gru and a
    plugin's cell in PyTorch's layout)."""
    H = model.cfg.hidden_size
    shape = model.cell.layer_shapes(H, H).get("weight_hh")
    return shape is not None and len(shape) == 2 and shape[1] == H and shape[0] % H == 0


def spectral_radii(model: Model) -> dict[str, float]:
    """Largest |eigenvalue| of each layer's W_hh, per gate block: ``{"l0.f": 0.93, ...}`` (and
    of a bidirectional model's reverse direction: ``"l0_reverse.f"``); {} for a cell without a
    matrix recurrence."""
    if not has_matrix_recurrence(model):
        return {}
    cfg = model.cfg
    H = cfg.hidden_size
    out = {}
    for layer, reverse, name in _directions(model):
        W_hh = layer_weights(model.params, layer, reverse, model.cell)["weight_hh"]
        W_hh = W_hh.astype(np.float64)
        G = W_hh.shape[0] // H
        names = GATE_NAMES.get(cfg.cell, tuple(f"g{k}" for k in range(G)))
        for k, gate in enumerate(names):
            eig = np.linalg.eigvals(W_hh[k * H : (k + 1) * H])
            out[name if G == 1 else f"{name}.{gate}"] = float(np.max(np.abs(eig)))
    return out


def retention(model: Model) -> dict[str, dict[str, float]]:
    """The cell's own retention measures (``CellSpec.retention``), grouped by measure:
    ``{"lambda_abs": {"l0.min": .., "l0.median": .., "l0.max": ..}}``; {} when it has none."""
    measure = model.cell.retention
    if measure is None:
        return {}
    out: dict[str, dict[str, float]] = {}
    for layer, reverse, name in _directions(model):
        w = layer_weights(model.params, layer, reverse, model.cell)
        for key, value in measure(w, model.cfg.hidden_size).items():
            group, _, stat = key.partition(".")
            out.setdefault(group, {})[f"{name}.{stat}" if stat else name] = float(value)
    return out


def gate_statistics(
    model: Model,
    sample: Sample,
    size: int = HEALTH_SIZE,
) -> dict[str, dict[str, float]]:
    """Per layer (and direction): the fraction of saturated activations and (lstm) the mean
    forget gate of the cells rnnlab knows, and the mean retain gate of a cell that declares
    one (``CellSpec.retain_gate``), over the first ``size`` sequences of the sample (a
    fraction over size x T x H values needs no more, and it keeps a per-epoch record cheap).
    With lengths: over valid steps only."""
    cfg, s = model.cfg, sample.split
    H = cfg.hidden_size
    n = min(size, len(s))
    lengths = None if s.lengths is None else s.lengths[:n]
    # each statistic is over the valid (step, sequence) pairs; all of them without lengths
    keep = (
        np.ones((s.x.shape[0], n, 1), bool)
        if lengths is None
        else valid_steps(lengths, s.x.shape[0])[..., None]
    )
    state = (
        [tuple(a[:n] for a in layer) for layer in sample.state]
        if sample.state is not None
        else model.zero_state(n)
    )
    D = model.directions
    rev = reversal(lengths, s.x.shape[0]) if D == 2 else None
    composed = D == 2 or cfg.cell not in KNOWN_CELLS  # else each layer's outputs feed the next
    inputs = _stack_inputs(model, s.x[:, :n], state, lengths) if composed else None
    h = s.x[:, :n]
    saturated, forget, retain = {}, {}, {}

    def mean_valid(a, keep_d):
        return float(
            np.mean(a) if lengths is None else np.sum(np.where(keep_d, a, 0)) / (keep_d.sum() * H)
        )

    for layer, reverse, name in _directions(model):
        w = layer_weights(model.params, layer, reverse, model.cell)
        if composed:
            h = reverse_steps(inputs[layer], rev) if reverse else inputs[layer]
        keep_d = keep  # reversal within each length keeps the valid steps where they are
        if model.cell.retain_gate is not None:
            retain[name] = mean_valid(model.cell.retain_gate(w, h), keep_d)
        if cfg.cell not in KNOWN_CELLS:
            continue
        hs, _, _ = model.backend.layer_forward(
            cfg.cell,
            w,
            h,
            state[layer * D + reverse],
            nonlinearity=cfg.nonlinearity,
            **_lengths_kwargs(lengths),
        )
        if cfg.cell == "rnn":  # the rnn's one activation is its hidden state
            gates = {"h": hs}
        else:
            h_prev = np.concatenate([state[layer * D + reverse][0][None], hs[:-1]], axis=0)
            gates = activations(cfg.cell, w, h, h_prev, cfg.nonlinearity)
        if cfg.cell != "rnn" or cfg.nonlinearity == "tanh":  # a relu does not saturate
            count = total = 0
            for gname in TANH_GATES[cfg.cell]:
                count += int(np.count_nonzero(keep & (np.abs(gates[gname]) > SATURATED_TANH)))
                total += gates[gname].size if lengths is None else int(keep.sum()) * H
            for gname in SIGMOID_GATES[cfg.cell]:
                g = gates[gname]
                out = (g < SATURATED_SIGMOID) | (g > 1.0 - SATURATED_SIGMOID)
                count += int(np.count_nonzero(keep & out))
                total += g.size if lengths is None else int(keep.sum()) * H
            saturated[name] = count / total
        if cfg.cell == "lstm":
            forget[name] = mean_valid(gates["f"], keep_d)
        if D == 1:
            h = hs
    out = {}
    if cfg.cell in KNOWN_CELLS:
        out["saturated"] = saturated
    if forget:
        out["forget_gate"] = forget
    if retain:
        out["retain_gate"] = retain
    return out


def health(model: Model, sample: Sample | None) -> dict:
    """What retention means for the cell (spectral radii of a matrix recurrence, the cell's
    own measures, the mean retain gate), saturated fraction and (lstm) mean forget gate, as
    one JSON-ready dict (only the measures of the parameters when ``sample`` is None). A
    measure that fails or that the cell does not define is a line in ``notes``."""
    out: dict = {}
    notes = []
    try:
        radii = spectral_radii(model)
        if radii:
            out["spectral_radius"] = radii
        out.update(retention(model))
    except (ArithmeticError, ValueError, KeyError, np.linalg.LinAlgError) as exc:
        notes.append(f"retention not measured ({type(exc).__name__}: {exc})")
    cell = model.cell
    if "spectral_radius" not in out and cell.retention is None and cell.retain_gate is None:
        notes.append(
            f"cell {model.cfg.cell!r} has no matrix recurrence and declares no retention "
            f"measure (CellSpec.retention)"
        )
    if sample is not None:
        try:
            out.update(gate_statistics(model, sample))
        except (ArithmeticError, ValueError, KeyError, IndexError) as exc:
            notes.append(f"gate statistics not measured ({type(exc).__name__}: {exc})")
        if model.cfg.cell not in KNOWN_CELLS and model.cell.retain_gate is None:
            notes.append(f"no gate statistics: rnnlab knows no gates of cell {model.cfg.cell!r}")
    if notes:
        out["notes"] = notes
    return out


# -- what a run records ------------------------------------------------------------------------
class Diagnostics:
    """The diagnostics of one run: the fixed sample, and what is recorded after an epoch and at
    the end of training, as the ``[diagnostics]`` table asks."""

    def __init__(self, cfg: DiagnosticsConfig, model: Model, dataset: Dataset, seed: int):
        self.cfg, self.model, self.dataset, self.seed = cfg, model, dataset, seed
        self._sample: Sample | None = None

    def unmeasurable(self) -> str | None:
        """Why the gradient flow cannot be measured for this run (it needs the cell's equations
        or the backend's ``state_gradients``), or None when it can."""
        cell, backend = self.model.cfg.cell, self.model.backend
        if cell in KNOWN_CELLS and self.model.directions == 1:
            return None
        gives = callable(getattr(backend, "state_gradients", None))
        runs = getattr(backend, "runs_cell", None)
        if cell in KNOWN_CELLS or (gives and (runs is None or runs(self.model.cell))):
            return None
        return (
            f"no gradient flow: rnnlab knows the equations of {', '.join(KNOWN_CELLS)}, "
            f"not of cell {cell!r}, and backend {backend.name!r} gives no state_gradients"
        )

    def _flow(self, sample: Sample) -> dict:
        """The gradient flow's record: ``gradient_norm_by_step`` (forward direction) and, for
        a bidirectional model, ``gradient_norm_by_step_reverse``."""
        norms = gradient_norms(self.model, sample)
        out = {"gradient_norm_by_step": norms[0]}
        if len(norms) == 2:
            out["gradient_norm_by_step_reverse"] = norms[1]
        return out

    def sample(self) -> Sample | None:
        """The sample, drawn on first use (None when :meth:`unmeasurable`). A stateful task's
        chunk states depend on the model, so they are carried through the stream each time."""
        if self.unmeasurable():
            return None
        if self._sample is None or self.dataset.chunk_length:
            self._sample = validation_sample(
                self.model, self.dataset, self.cfg.sample_size, self.seed
            )
        return self._sample

    def after_epoch(self, epoch: int) -> dict:
        """What metrics.jsonl records for ``epoch`` (1-based): health every ``health_every``
        epochs, the gradient flow every ``every`` epochs; {} when nothing is due."""
        due_health = self.cfg.health_every and epoch % self.cfg.health_every == 0
        due_flow = self.cfg.every and epoch % self.cfg.every == 0
        if not (due_health or due_flow):
            return {}
        sample, out = self.sample(), {}
        if due_health:
            out["health"] = health(self.model, sample)
        if due_flow and sample is not None:
            try:
                out.update(self._flow(sample))
            except (ArithmeticError, ValueError, KeyError, IndexError) as exc:
                out["note"] = f"no gradient flow ({type(exc).__name__}: {exc})"
        return out

    def at_end(self) -> dict:
        """summary.json's ``diagnostics`` table for the model training ended with."""
        sample = self.sample()
        if sample is None:
            return {"health": health(self.model, None), "note": self.unmeasurable()}
        try:
            flow = self._flow(sample)
        except (ArithmeticError, ValueError, KeyError, IndexError) as exc:
            return {
                "health": health(self.model, sample),
                "note": f"no gradient flow ({type(exc).__name__}: {exc})",
            }
        norms = flow["gradient_norm_by_step"]
        return {
            **flow,
            "first_to_last": flow_ratio(norms),
            "sample_size": len(sample.split),
            "health": health(self.model, sample),
        }
