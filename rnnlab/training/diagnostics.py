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

Recurrent health, every ``health_every`` epochs: the spectral radius (largest |eigenvalue|) of
every layer's W_hh (per gate block for lstm and gru), the fraction of saturated activations
(|tanh| > 0.99, sigmoid gates < 0.01 or > 0.99) and, for lstm, the mean forget gate, on the
first :data:`HEALTH_SIZE` sequences of the same sample.

Nothing here draws from the run's generators or touches its parameters: a run's numbers are the
same with or without diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..experiment.config import DiagnosticsConfig
from ..nn.lengths import valid_steps
from ..nn.model import Model, layer_weights, loss_and_grad, target_mask
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
    W_hh = w["weight_hh"]
    total = np.empty_like(hs)
    total[-1] = direct[-1]
    if cfg.cell == "gru":
        H = hs.shape[-1]
        h_prev = np.concatenate([state[top][0][None], hs[:-1]], axis=0)
        gates = activations("gru", w, h_in, h_prev)
        r, z = gates["r"], gates["z"]
        for t in range(T - 2, -1, -1):
            d_rec = da[t + 1].copy()
            d_rec[:, 2 * H :] *= r[t + 1]
            total[t] = direct[t] + z[t + 1] * total[t + 1] + d_rec @ W_hh
    else:
        total[:-1] = direct[:-1] + da[1:] @ W_hh
    return total


def gradient_norm_by_step(model: Model, sample: Sample) -> list[float]:
    """One value per step, step 1 first: sqrt(N) * ||dL/dh_t||, the norm over the whole
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
    squares = np.zeros(T)
    for start in range(0, N, per):
        rows = slice(start, start + per)
        y = s.y[rows] if sample.target == "last" else s.y[:, rows]
        state = (
            None
            if sample.state is None
            else [tuple(a[rows] for a in layer) for layer in sample.state]
        )
        if lengths is None:
            dh = hidden_gradients(model, s.x[:, rows], y, sample.loss, sample.target, state)
            share = dh.shape[1] / N
        else:
            y = y if sample.target == "last" else y[:T]
            dh = hidden_gradients(
                model, s.x[:T, rows], y, sample.loss, sample.target, state, lengths[rows]
            )
            if sample.target == "last":
                share = dh.shape[1] / N
            else:
                share = int(valid[:, rows].sum()) / int(valid.sum())
        squares += share * share * np.einsum("tnh,tnh->t", dh, dh, dtype=np.float64)
    if lengths is None:
        return [float(v) for v in np.sqrt(N) * np.sqrt(squares)]
    running = valid.sum(axis=1)  # N_t >= 1 for every t < max(lengths)
    return [float(v) for v in N / np.sqrt(running) * np.sqrt(squares)]


def flow_ratio(norms: list[float]) -> float | None:
    """||dL/dh_1|| / ||dL/dh_T||, or None when the last step's norm is 0."""
    return norms[0] / norms[-1] if norms and norms[-1] > 0 else None


# -- recurrent health --------------------------------------------------------------------------
def spectral_radii(model: Model) -> dict[str, float]:
    """Largest |eigenvalue| of each layer's W_hh, per gate block: ``{"l0.f": 0.93, ...}`` (and
    of a bidirectional model's reverse direction: ``"l0_reverse.f"``)."""
    cfg = model.cfg
    H = cfg.hidden_size
    out = {}
    for layer in range(cfg.layers):
        for reverse in (False, True)[: model.directions]:
            W_hh = layer_weights(model.params, layer, reverse)["weight_hh"].astype(np.float64)
            G = W_hh.shape[0] // H
            names = GATE_NAMES.get(cfg.cell, tuple(f"g{k}" for k in range(G)))
            name = f"l{layer}_reverse" if reverse else f"l{layer}"
            for k, gate in enumerate(names):
                eig = np.linalg.eigvals(W_hh[k * H : (k + 1) * H])
                out[name if G == 1 else f"{name}.{gate}"] = float(np.max(np.abs(eig)))
    return out


def gate_statistics(
    model: Model,
    sample: Sample,
    size: int = HEALTH_SIZE,
) -> dict[str, dict[str, float]]:
    """Per layer: the fraction of saturated activations and (lstm) the mean forget gate, over
    the first ``size`` sequences of the sample (a fraction over size x T x H values needs no
    more, and it keeps a per-epoch record cheap). With lengths: over valid steps only."""
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
    h = s.x[:, :n]
    saturated, forget = {}, {}
    for layer in range(cfg.layers):
        w = layer_weights(model.params, layer)
        hs, _, _ = model.backend.layer_forward(
            cfg.cell, w, h, state[layer], nonlinearity=cfg.nonlinearity, **_lengths_kwargs(lengths)
        )
        if cfg.cell == "rnn":  # the rnn's one activation is its hidden state
            gates = {"h": hs}
        else:
            h_prev = np.concatenate([state[layer][0][None], hs[:-1]], axis=0)
            gates = activations(cfg.cell, w, h, h_prev, cfg.nonlinearity)
        if cfg.cell != "rnn" or cfg.nonlinearity == "tanh":  # a relu does not saturate
            count = total = 0
            for name in TANH_GATES[cfg.cell]:
                count += int(np.count_nonzero(keep & (np.abs(gates[name]) > SATURATED_TANH)))
                total += gates[name].size if lengths is None else int(keep.sum()) * H
            for name in SIGMOID_GATES[cfg.cell]:
                g = gates[name]
                out = (g < SATURATED_SIGMOID) | (g > 1.0 - SATURATED_SIGMOID)
                count += int(np.count_nonzero(keep & out))
                total += g.size if lengths is None else int(keep.sum()) * H
            saturated[f"l{layer}"] = count / total
        if cfg.cell == "lstm":
            f = gates["f"]
            forget[f"l{layer}"] = float(
                np.mean(f) if lengths is None else np.sum(np.where(keep, f, 0)) / (keep.sum() * H)
            )
        h = hs
    out = {"saturated": saturated}
    if forget:
        out["forget_gate"] = forget
    return out


def health(model: Model, sample: Sample | None) -> dict[str, dict[str, float]]:
    """Spectral radii, saturated fraction and (lstm) mean forget gate, as one JSON-ready dict
    (only the spectral radii when ``sample`` is None)."""
    out = {"spectral_radius": spectral_radii(model)}
    if sample is not None:
        out.update(gate_statistics(model, sample))
    return out


# -- what a run records ------------------------------------------------------------------------
class Diagnostics:
    """The diagnostics of one run: the fixed sample, and what is recorded after an epoch and at
    the end of training, as the ``[diagnostics]`` table asks."""

    def __init__(self, cfg: DiagnosticsConfig, model: Model, dataset: Dataset, seed: int):
        self.cfg, self.model, self.dataset, self.seed = cfg, model, dataset, seed
        self._sample: Sample | None = None

    def unmeasurable(self) -> str | None:
        """Why the gradient flow and the gate statistics cannot be measured for this run (they
        need the cell's equations and one direction), or None when they can."""
        cell = self.model.cfg.cell
        if cell not in KNOWN_CELLS:
            return (
                f"no gradient flow or gate statistics: rnnlab knows the equations of "
                f"{', '.join(KNOWN_CELLS)}, not of cell {cell!r}"
            )
        if self.model.cfg.bidirectional:
            return (
                "no gradient flow or gate statistics: bidirectional models are not "
                "supported by the diagnostics yet"
            )
        return None

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
            out["gradient_norm_by_step"] = gradient_norm_by_step(self.model, sample)
        return out

    def at_end(self) -> dict:
        """summary.json's ``diagnostics`` table for the model training ended with."""
        sample = self.sample()
        if sample is None:
            return {"health": health(self.model, None), "note": self.unmeasurable()}
        norms = gradient_norm_by_step(self.model, sample)
        return {
            "gradient_norm_by_step": norms,
            "first_to_last": flow_ratio(norms),
            "sample_size": len(sample.split),
            "health": health(self.model, sample),
        }
