"""The model: recurrent layers (run by a backend), a linear head, and the loss.

Parameters are a flat dict. Each layer k holds its cell's tensors (:class:`rnnlab.cells.CellSpec`
lists them) as ``rnn.{key}_l{k}``, and with ``model.bidirectional`` the same tensors with the
suffix ``_reverse`` (layers k > 0 then read ``I_k = 2H`` inputs); the head is
``head.weight [O, D*H]`` and ``head.bias [O]`` (D directions). For the cells PyTorch has these
are PyTorch's names and shapes, so they load into ``torch.nn.RNN/LSTM/GRU`` (attribute ``rnn``)
plus ``torch.nn.Linear`` (attribute ``head``):

    rnn.weight_ih_l{k} [G*H, I_k]   rnn.weight_hh_l{k} [G*H, H]
    rnn.bias_ih_l{k}   [G*H]        rnn.bias_hh_l{k}   [G*H]

with G gates per cell (1 for rnn, 4 for lstm: i, f, g, o, 3 for gru: r, z, n).

The stack of layers and directions, and dropout between layers, are composed in one place
(:class:`Model`'s ``_layers_forward`` / ``_layers_backward``): a backend only ever runs one
direction of one layer forward in time. The reverse direction is the same forward kernel run on
each sequence reversed within its own length, its outputs reversed back. The head reads the
layers' per-step outputs, never a state tensor: for target "last" each sequence's output at its
last valid step (the reverse direction's at step 0, the last it reads).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cells import BUILTIN_CELLS, CELL_OPTIONS, LAYER_KEYS, CellSpec, InitContext, cell_spec
from ..experiment.schema import ModelConfig
from .features import features_of
from .lengths import check_backend_supports, valid_steps

GATES = {name: spec.gates for name, spec in BUILTIN_CELLS.items()}  # kept for old imports


@dataclass(frozen=True)
class Shape:
    """Sizes the task decides: inputs and outputs per step."""

    input_size: int
    output_size: int


HEAD_KEYS = ("weight", "bias")


def param_name(key: str, layer: int | None = None, reverse: bool = False) -> str:
    """PyTorch's name of a parameter, the one way rnnlab and its plugins spell it.

    With a layer, a recurrent parameter (``key``: one of the cell's, ``CellSpec.keys``):
    ``param_name("weight_ih", 0) == "rnn.weight_ih_l0"``, and of the reverse direction of a
    bidirectional layer ``param_name("weight_ih", 0, reverse=True) ==
    "rnn.weight_ih_l0_reverse"``. Without, the head's (``key`` in ``HEAD_KEYS``):
    ``param_name("weight") == "head.weight"``.
    """
    if layer is None:
        if key not in HEAD_KEYS:
            raise ValueError(f"unknown head parameter {key!r} (valid: {', '.join(HEAD_KEYS)})")
        return f"head.{key}"
    if not key.isidentifier():
        raise ValueError(f"a layer parameter's key must be an identifier, not {key!r}")
    return f"rnn.{key}_l{layer}{'_reverse' if reverse else ''}"


def directions(cfg: ModelConfig) -> int:
    """Directions per layer: 2 for a bidirectional model, else 1."""
    return 2 if cfg.bidirectional else 1


def cell_options(cfg: ModelConfig) -> dict:
    """The model's cell options (:data:`rnnlab.cells.CELL_OPTIONS`), their defaults where the
    config has no such key."""
    return {key: getattr(cfg, key, default) for key, default in CELL_OPTIONS.items()}


def init_params(
    cfg: ModelConfig, shape: Shape, rng: np.random.Generator, cell: CellSpec | None = None
) -> dict[str, np.ndarray]:
    """Every parameter, drawn as the cell's spec says (:meth:`CellSpec.draw_layer`), then the
    head as torch.nn.Linear(D*H, O) draws it: weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).

    The cells PyTorch has draw PyTorch's default: every recurrent tensor ~ U(-1/sqrt(H),
    1/sqrt(H)). ``model.forget_bias`` (cells with a forget gate) then sets the forget gate's
    slice of every layer's ``bias_ih`` and zeroes that of ``bias_hh``, drawing nothing more;
    ``model.chrono_tmax`` (lstm, gru) draws chrono initialisation's biases after each
    direction's tensors. ``cell`` is the spec of ``cfg.cell`` (default: the built-in cell).

    Drawn in PyTorch's order: layer by layer, the forward direction's parameters then (when
    bidirectional) the reverse direction's, then the head."""
    cell = cell or cell_spec(cfg.cell)
    dtype = np.dtype(cfg.dtype)
    H, D = cfg.hidden_size, directions(cfg)
    options = cell_options(cfg)
    for key, default in CELL_OPTIONS.items():
        if options[key] != default and key not in cell.applicable_options:
            raise ValueError(f"model.{key} does not apply to cell {cfg.cell!r}")
    params = {}
    for layer in range(cfg.layers):
        ctx = InitContext(shape.input_size if layer == 0 else D * H, H, options)
        for reverse in (False, True)[:D]:
            for key, value in cell.draw_layer(rng, ctx, dtype).items():
                params[param_name(key, layer, reverse)] = value
    bound = 1.0 / np.sqrt(H)
    params["head.weight"] = rng.uniform(-bound, bound, (shape.output_size, D * H)).astype(dtype)
    params["head.bias"] = rng.uniform(-bound, bound, (shape.output_size,)).astype(dtype)
    return params


def layer_weights(
    params: dict[str, np.ndarray], layer: int, reverse: bool = False, cell: CellSpec | None = None
) -> dict[str, np.ndarray]:
    """One direction of one layer's tensors, keyed as the cell's spec (default: PyTorch's
    four)."""
    keys = cell.keys if cell is not None else LAYER_KEYS
    return {key: params[param_name(key, layer, reverse)] for key in keys}


def reversal(lengths: np.ndarray | None, T: int) -> np.ndarray | None:
    """``[T, N]`` step indices that reverse each sequence within its own length and leave its
    padding in place: ``rev[t, n] = lengths[n] - 1 - t`` for ``t < lengths[n]``, else ``t``.
    The map is its own inverse, so one gather reverses and the same gather reverses back.
    None when every sequence is full length (then it is ``x[::-1]``)."""
    if lengths is None:
        return None
    t = np.arange(T)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def reverse_steps(a: np.ndarray, rev: np.ndarray | None) -> np.ndarray:
    """``a [T, N, ...]`` with each sequence reversed within its length (see :func:`reversal`),
    as a new C-contiguous array."""
    if rev is None:
        return np.ascontiguousarray(a[::-1])
    return a[rev, np.arange(a.shape[1])]


# -- loss ------------------------------------------------------------------------------------
def loss_and_grad(
    out: np.ndarray, y: np.ndarray, loss: str, valid: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean loss over every target and its gradient with respect to ``out``.

    mse:  L = mean((out - y)^2)                      (PyTorch MSELoss, reduction="mean")
    xent: L = mean(-log softmax(out)[y])             (PyTorch CrossEntropyLoss on logits)

    ``valid`` (bool, ``out``'s leading axes without the last: ``[T, N]`` for target "every"):
    only those targets count; the means are over valid steps (mse: valid steps x outputs), and
    the gradient is 0 elsewhere. Values of ``out`` and ``y`` elsewhere are never read into the
    result (selected away, not multiplied by 0).
    """
    if valid is not None:
        return _masked_loss_and_grad(out, y, loss, valid)
    if loss == "mse":
        diff = out - y
        return float(np.mean(diff * diff)), (2.0 / diff.size) * diff
    logp = log_softmax(out)
    flat = logp.reshape(-1, logp.shape[-1])
    idx = y.reshape(-1)
    n = idx.size
    value = -float(np.sum(flat[np.arange(n), idx])) / n
    grad = np.exp(flat)
    grad[np.arange(n), idx] -= 1.0
    return value, (grad / n).reshape(out.shape)


def _masked_loss_and_grad(out, y, loss, valid):
    """:func:`loss_and_grad` over the targets where ``valid`` is True."""
    keep = valid[..., None]
    count = int(valid.sum())
    if loss == "mse":
        diff = np.where(keep, out - y, 0).astype(out.dtype, copy=False)
        n = count * out.shape[-1]
        return float(np.sum(diff * diff)) / n, (2.0 / n) * diff
    logp = log_softmax(np.where(keep, out, 0).astype(out.dtype, copy=False))
    flat = logp.reshape(-1, logp.shape[-1])
    idx = np.where(valid, y, 0).reshape(-1)  # a padded step's class index is never used
    rows = np.arange(idx.size)
    mask = valid.reshape(-1)
    value = -float(np.sum(np.where(mask, flat[rows, idx], 0))) / count
    grad = np.exp(flat)
    grad[rows, idx] -= 1.0
    grad = np.where(mask[:, None], grad / count, 0).astype(out.dtype, copy=False)
    return value, grad.reshape(out.shape)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# model settings that change nothing in a forward pass without dropout
NOT_IN_FORWARD = frozenset({"dropout", *CELL_OPTIONS})


def model_features(cfg: ModelConfig) -> frozenset[str]:
    """What a forward pass of this model uses (``"cell=lstm"``, ``"bidirectional"``, ...): a
    backend's compiled forward must declare all of it (``Backend.forward_features``)."""
    return features_of(cfg, NOT_IN_FORWARD)


def dropout_masks(
    cfg: ModelConfig, rng: np.random.Generator, T: int, N: int, dtype
) -> list[np.ndarray] | None:
    """Inverted-dropout masks for one training batch of ``T`` steps and ``N`` sequences, one
    ``[T, N, D*H]`` array per layer but the last: ``1/(1-p)`` where kept (probability ``1-p``),
    0 where dropped (PyTorch's scaling). None, drawing nothing from ``rng``, when
    ``model.dropout`` is 0 or there is one layer. A backend's epoch runner draws its masks with
    this, batch by batch, to drop exactly what the core loop drops."""
    p, layers = cfg.dropout, cfg.layers
    if p == 0 or layers == 1:
        return None
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0
    width = directions(cfg) * cfg.hidden_size
    return [
        np.where(rng.random((T, N, width)) < 1.0 - p, scale, 0.0).astype(dtype)
        for _ in range(layers - 1)
    ]


class Model:
    """A configured model bound to a backend: forward, loss, gradients and predictions.

    ``lengths`` (int64 ``[N]``, optional everywhere) gives each sequence's length: PyTorch's
    packed semantics (see :class:`rnnlab.specs.Split`). Only a backend that declares the
    ``"lengths"`` feature accepts it.
    """

    def __init__(
        self, cfg: ModelConfig, backend, params: dict[str, np.ndarray], cell: CellSpec | None = None
    ):
        self.cfg, self.backend, self.params = cfg, backend, params
        self.cell = cell or cell_spec(cfg.cell)
        self.target = "last"  # what predict() returns when not told: the dataset's target
        # the value a ModelConfig made in Python carries for a cell it does not apply to (the
        # config's default, "tanh") gives the cell's default; experiment files are checked
        self.nonlinearity = (
            cfg.nonlinearity
            if cfg.nonlinearity in self.cell.nonlinearities
            else self.cell.default_nonlinearity
        )
        runs_cell = getattr(backend, "runs_cell", None)
        if runs_cell is not None:
            runs_cell(self.cell)  # a backend that runs cells from their specs learns this one
        self._compiled = None  # the backend's compiled forward: None until asked, False: none

    def compiled_forward(self, lengths=None):
        """The backend's compiled forward pass (``Backend.forward_runner``) when it declares
        every feature of this model, and ``"lengths"`` when ``lengths`` are given; else None
        (the layers are composed here, from the backend's layer kernels)."""
        if self._compiled is None:
            self._compiled = False
            declared = getattr(self.backend, "forward_features", frozenset())
            if declared and model_features(self.cfg) <= declared:
                self._compiled = self.backend.forward_runner(self.cfg) or False
        if not self._compiled:
            return None
        if lengths is not None and "lengths" not in self.backend.forward_features:
            return None
        return self._compiled

    @property
    def directions(self) -> int:
        return directions(self.cfg)

    def zero_state(self, batch: int) -> list[tuple[np.ndarray, ...]]:
        """The initial state of every layer and direction (``layer * directions + direction``,
        PyTorch's ``h_0`` order): zeros, one array per state tensor of the cell (``(h,)``, or
        ``(h, c)`` for lstm)."""
        dtype = self.params["head.weight"].dtype
        return [
            self.cell.zero_state(batch, self.cfg.hidden_size, dtype)
            for _ in range(self.cfg.layers * self.directions)
        ]

    def dropout_masks(self, rng: np.random.Generator, T: int, N: int) -> list[np.ndarray] | None:
        """This model's :func:`dropout_masks` for one training batch."""
        return dropout_masks(self.cfg, rng, T, N, self.params["head.weight"].dtype)

    # -- the stack: every layer and direction is composed here, and only here ----------------
    def _layer_forward(self, layer, reverse, x, state0, lengths):
        """One direction of one layer over ``x`` by the backend; ``(hs, final_state, cache)``."""
        kwargs = {"nonlinearity": self.nonlinearity}
        if lengths is not None:
            kwargs["lengths"] = lengths
        return self.backend.layer_forward(
            self.cfg.cell,
            layer_weights(self.params, layer, reverse, self.cell),
            x,
            state0,
            **kwargs,
        )

    def _layer_backward(self, layer, reverse, cache, dhs):
        """The gradients of one direction's weights (full names) and of its input."""
        grads, dx = self.backend.layer_backward(
            self.cfg.cell, layer_weights(self.params, layer, reverse, self.cell), cache, dhs
        )
        return {param_name(key, layer, reverse): g for key, g in grads.items()}, dx

    def _layers_forward(self, x, state, lengths=None, masks=None):
        """Run the stack; return the top layer's outputs (``[forward ; reverse]`` when
        bidirectional), the final state of every layer and direction, and the caches.

        The reverse direction runs the backend's forward kernel on each sequence reversed
        within its own length and reverses its outputs back. ``masks`` (training only, see
        :meth:`dropout_masks`) multiply the outputs of every layer but the last."""
        if lengths is not None:
            check_backend_supports(self.backend)
        D = self.directions
        rev = reversal(lengths, x.shape[0]) if D == 2 else None
        caches, final = [], []
        state = state if state is not None else self.zero_state(x.shape[1])
        h = x
        for layer in range(self.cfg.layers):
            h_fwd, last, cache = self._layer_forward(layer, False, h, state[layer * D], lengths)
            layer_caches, final = [cache], [*final, last]
            if D == 2:
                hs, last, cache = self._layer_forward(
                    layer, True, reverse_steps(h, rev), state[layer * D + 1], lengths
                )
                h_fwd = np.concatenate([h_fwd, reverse_steps(hs, rev)], axis=-1)
                layer_caches.append(cache)
                final.append(last)
            h = h_fwd
            if masks is not None and layer < self.cfg.layers - 1:
                h = h * masks[layer]  # dropout between layers
            caches.append(layer_caches)
        return h, final, (caches, rev)

    def _layers_backward(self, caches, dh, masks=None) -> dict[str, np.ndarray]:
        """BPTT through the stack from ``dh`` (the gradient of the top layer's outputs), with
        the dropout ``masks`` the forward pass used."""
        caches, rev = caches
        H, grads = self.cfg.hidden_size, {}
        for layer in reversed(range(self.cfg.layers)):
            if masks is not None and layer < self.cfg.layers - 1:
                dh = dh * masks[layer]
            if self.directions == 1:
                layer_grads, dh = self._layer_backward(layer, False, caches[layer][0], dh)
                grads.update(layer_grads)
                continue
            fwd_grads, dx = self._layer_backward(
                layer, False, caches[layer][0], np.ascontiguousarray(dh[..., :H])
            )
            rev_grads, dx_rev = self._layer_backward(
                layer, True, caches[layer][1], reverse_steps(dh[..., H:], rev)
            )
            grads.update(fwd_grads)
            grads.update(rev_grads)
            dh = dx + reverse_steps(dx_rev, rev)
        return grads

    # -- the head and the loss -----------------------------------------------------------------
    def _top(self, hs: np.ndarray, final, target: str, lengths) -> np.ndarray:
        """What the head reads: every step's outputs, or for target "last" the top layer's
        output at each sequence's last valid step; bidirectional: ``[forward ; reverse]``, the
        reverse direction's output at step 0 (its last, after reading the sequence back)."""
        if target == "every":
            return hs
        last = hs[-1] if lengths is None else hs[lengths - 1, np.arange(hs.shape[1])]
        if self.directions == 2:
            H = self.cfg.hidden_size
            return np.concatenate([last[:, :H], hs[0, :, H:]], axis=-1)
        return last

    def _head(self, top: np.ndarray) -> np.ndarray:
        # y = h W^T + b, on the last step or on every step
        return top @ self.params["head.weight"].T + self.params["head.bias"]

    def _output_gradient(self, hs, dout, target: str, lengths) -> np.ndarray:
        """The gradient of the top layer's outputs ``hs`` from that of the head's ``dout``: for
        target "last" it enters each sequence's output at its last valid step (the reverse
        direction's at step 0)."""
        W = self.params["head.weight"]
        if target == "last" and self.directions == 2:
            # the forward output read is hs[last step, :H]; the reverse one hs[0, H:]
            dtop, H = dout @ W, self.cfg.hidden_size
            dh = np.zeros_like(hs)
            last = hs.shape[0] - 1 if lengths is None else lengths - 1
            dh[last, np.arange(hs.shape[1]), :H] = dtop[:, :H]
            dh[0, :, H:] = dtop[:, H:]
        elif target == "last":
            dh = np.zeros_like(hs)
            if lengths is None:
                dh[-1] = dout @ W
            else:  # the gradient enters at each sequence's own last step
                dh[lengths - 1, np.arange(hs.shape[1])] = dout @ W
        else:
            dh = dout @ W
        return dh

    def outputs(self, x: np.ndarray, target: str, state=None, lengths=None):
        """Head outputs (values for mse, logits for xent) and the final state of every layer
        and direction. With ``lengths`` and target "every", the outputs at padded steps are the
        head's bias (the hidden state there is 0) and count for nothing. Never drops (dropout
        is for training only). The backend's compiled forward runs it when it has one."""
        fwd = self.compiled_forward(lengths)
        if fwd is not None:
            return fwd(self.params, x, target, lengths=lengths, state=state)
        hs, final, _ = self._layers_forward(x, state, lengths)
        return self._head(self._top(hs, final, target, lengths)), final

    def predict(self, x: np.ndarray, target: str | None = None, lengths=None) -> np.ndarray:
        """The outputs at the last step (``target="last"``) or at every step (``"every"``);
        by default where the model's dataset has its targets (:attr:`target`)."""
        return self.outputs(x, target or self.target, lengths=lengths)[0]

    def loss(self, x, y, loss: str, target: str, state=None, lengths=None, masks=None) -> float:
        """The loss (no dropout unless given the ``masks`` of a training step)."""
        if masks is None:
            out, _ = self.outputs(x, target, state, lengths)
        else:
            hs, final, _ = self._layers_forward(x, state, lengths, masks)
            out = self._head(self._top(hs, final, target, lengths))
        return loss_and_grad(out, y, loss, target_mask(target, lengths, x.shape[0]))[0]

    def loss_and_grads(self, x, y, loss: str, target: str, state=None, lengths=None, masks=None):
        """Forward, loss, and exact gradients of every parameter (BPTT through the backend).

        Returns ``(loss, grads, final_state)``; ``grads`` has the keys of ``params``. With
        ``lengths``, BPTT starts at each sequence's own last valid step. ``masks``: the dropout
        masks of a training step (:meth:`dropout_masks`); None never drops.
        """
        hs, final, caches = self._layers_forward(x, state, lengths, masks)
        top = self._top(hs, final, target, lengths)
        out = self._head(top)
        value, dout = loss_and_grad(out, y, loss, target_mask(target, lengths, x.shape[0]))
        grads = {
            "head.weight": dout.reshape(-1, dout.shape[-1]).T @ top.reshape(-1, top.shape[-1]),
            "head.bias": dout.reshape(-1, dout.shape[-1]).sum(axis=0),
        }
        dh = self._output_gradient(hs, dout, target, lengths)
        grads.update(self._layers_backward(caches, dh, masks))
        return value, grads, final


def target_mask(target: str, lengths, T: int) -> np.ndarray | None:
    """Which targets count: ``[T, N]`` valid steps for target "every" with lengths, else None
    (every target counts; target "last" has one per sequence)."""
    return valid_steps(lengths, T) if target == "every" and lengths is not None else None
