"""The model: recurrent layers (run by a backend), a linear head, and the loss.

Parameters are a flat dict with PyTorch's names and shapes, so they load into
``torch.nn.RNN/LSTM/GRU`` (attribute ``rnn``) plus ``torch.nn.Linear`` (attribute ``head``):

    rnn.weight_ih_l{k} [G*H, I_k]   rnn.weight_hh_l{k} [G*H, H]
    rnn.bias_ih_l{k}   [G*H]        rnn.bias_hh_l{k}   [G*H]
    head.weight        [O, H]       head.bias          [O]

with G gates per cell (:mod:`rnnlab.cells`: 1 for rnn, 4 for lstm: i, f, g, o, 3 for gru:
r, z, n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import BUILTIN_CELLS, LAYER_KEYS, CellSpec, cell_spec
from .config import ModelConfig

GATES = {name: spec.gates for name, spec in BUILTIN_CELLS.items()}  # kept for old imports


@dataclass(frozen=True)
class Shape:
    """Sizes the task decides: inputs and outputs per step."""

    input_size: int
    output_size: int


HEAD_KEYS = ("weight", "bias")


def param_name(key: str, layer: int | None = None) -> str:
    """PyTorch's name of a parameter, the one way rnnlab and its plugins spell it.

    With a layer, a recurrent parameter (``key`` in ``LAYER_KEYS``):
    ``param_name("weight_ih", 0) == "rnn.weight_ih_l0"``. Without, the head's (``key`` in
    ``HEAD_KEYS``): ``param_name("weight") == "head.weight"``.
    """
    if layer is None:
        if key not in HEAD_KEYS:
            raise ValueError(f"unknown head parameter {key!r} (valid: {', '.join(HEAD_KEYS)})")
        return f"head.{key}"
    if key not in LAYER_KEYS:
        raise ValueError(f"unknown layer parameter {key!r} (valid: {', '.join(LAYER_KEYS)})")
    return f"rnn.{key}_l{layer}"


def init_params(cfg: ModelConfig, shape: Shape, rng: np.random.Generator,
                cell: CellSpec | None = None) -> dict[str, np.ndarray]:
    """PyTorch's default initialisation: every recurrent weight and bias ~ U(-1/sqrt(H), 1/sqrt(H));
    the head (nn.Linear) weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)) as well (fan_in = H).

    With ``cfg.forget_bias != 0`` (cells with a forget gate: lstm), the forget-gate slice
    (``[H:2H]`` for lstm) of every layer's ``bias_ih`` is then set to ``forget_bias`` and that of
    ``bias_hh`` to 0, so the gate's total bias is ``forget_bias``; the random draws are the same
    as without it. ``cell`` is the spec of ``cfg.cell`` (default: the built-in cell)."""
    cell = cell or cell_spec(cfg.cell)
    dtype = np.dtype(cfg.dtype)
    H = cfg.hidden_size
    bound = 1.0 / np.sqrt(H)
    params = {}
    for layer in range(cfg.layers):
        shapes = cell.layer_shapes(shape.input_size if layer == 0 else H, H)
        for key in LAYER_KEYS:
            params[param_name(key, layer)] = rng.uniform(-bound, bound, shapes[key]).astype(dtype)
        if cfg.forget_bias != 0:
            if cell.forget_gate is None:
                raise ValueError(f"forget_bias applies to cells with a forget gate, not "
                                 f"{cfg.cell!r}")
            gate = slice(cell.forget_gate * H, (cell.forget_gate + 1) * H)
            params[param_name("bias_ih", layer)][gate] = cfg.forget_bias
            params[param_name("bias_hh", layer)][gate] = 0.0
    params["head.weight"] = rng.uniform(-bound, bound, (shape.output_size, H)).astype(dtype)
    params["head.bias"] = rng.uniform(-bound, bound, (shape.output_size,)).astype(dtype)
    return params


def layer_weights(params: dict[str, np.ndarray], layer: int) -> dict[str, np.ndarray]:
    return {key: params[param_name(key, layer)] for key in LAYER_KEYS}


# -- loss ------------------------------------------------------------------------------------
def loss_and_grad(out: np.ndarray, y: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
    """Mean loss over every target and its gradient with respect to ``out``.

    mse:  L = mean((out - y)^2)                      (PyTorch MSELoss, reduction="mean")
    xent: L = mean(-log softmax(out)[y])             (PyTorch CrossEntropyLoss on logits)
    """
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


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class Model:
    """A configured model bound to a backend: forward, loss, gradients and predictions."""

    def __init__(self, cfg: ModelConfig, backend, params: dict[str, np.ndarray],
                 cell: CellSpec | None = None):
        self.cfg, self.backend, self.params = cfg, backend, params
        self.cell = cell or cell_spec(cfg.cell)

    def zero_state(self, batch: int) -> list[tuple[np.ndarray, ...]]:
        """The initial state of every layer: zeros, one array per state tensor of the cell
        (``(h,)``, or ``(h, c)`` for lstm)."""
        dtype = self.params["head.weight"].dtype
        return [self.cell.zero_state(batch, self.cfg.hidden_size, dtype)
                for _ in range(self.cfg.layers)]

    def _layers_forward(self, x, state):
        """Run the stack; return the top layer's hidden states, final states and caches."""
        caches, final = [], []
        state = state if state is not None else self.zero_state(x.shape[1])
        h = x
        for layer in range(self.cfg.layers):
            h, last, cache = self.backend.layer_forward(
                self.cfg.cell, layer_weights(self.params, layer), h, state[layer],
                nonlinearity=self.cfg.nonlinearity)
            caches.append(cache)
            final.append(last)
        return h, final, caches

    def _head(self, hs: np.ndarray, target: str) -> np.ndarray:
        # y = h W^T + b, on the last step or on every step
        top = hs[-1] if target == "last" else hs
        return top @ self.params["head.weight"].T + self.params["head.bias"]

    def outputs(self, x: np.ndarray, target: str, state=None):
        """Head outputs (values for mse, logits for xent) and the final state of every layer."""
        hs, final, _ = self._layers_forward(x, state)
        return self._head(hs, target), final

    def predict(self, x: np.ndarray, target: str = "last") -> np.ndarray:
        return self.outputs(x, target)[0]

    def loss(self, x, y, loss: str, target: str, state=None) -> float:
        return loss_and_grad(self.outputs(x, target, state)[0], y, loss)[0]

    def loss_and_grads(self, x, y, loss: str, target: str, state=None):
        """Forward, loss, and exact gradients of every parameter (BPTT through the backend).

        Returns ``(loss, grads, final_state)``; ``grads`` has the keys of ``params``.
        """
        hs, final, caches = self._layers_forward(x, state)
        out = self._head(hs, target)
        value, dout = loss_and_grad(out, y, loss)
        W = self.params["head.weight"]
        top = hs[-1] if target == "last" else hs
        grads = {
            "head.weight": dout.reshape(-1, dout.shape[-1]).T @ top.reshape(-1, top.shape[-1]),
            "head.bias": dout.reshape(-1, dout.shape[-1]).sum(axis=0),
        }
        if target == "last":
            dh = np.zeros_like(hs)
            dh[-1] = dout @ W
        else:
            dh = dout @ W
        for layer in reversed(range(self.cfg.layers)):
            layer_grads, dh = self.backend.layer_backward(
                self.cfg.cell, layer_weights(self.params, layer), caches[layer], dh)
            for key, g in layer_grads.items():
                grads[param_name(key, layer)] = g
        return value, grads, final
