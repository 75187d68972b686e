"""Recurrent cells, each described once: the config, the model, the memory check, the
conformance kit and every backend read a cell's :class:`CellSpec`.

A cell's parameters follow PyTorch's layout: per layer ``weight_ih [G*H, I]``,
``weight_hh [G*H, H]``, ``bias_ih [G*H]``, ``bias_hh [G*H]`` with ``G`` gates. The built-in cells
are PyTorch's ``nn.RNN``, ``nn.LSTM`` (gates i, f, g, o; state ``(h, c)``) and ``nn.GRU`` (gates
r, z, n). A plugin adds a cell by returning its spec from the ``register_cells`` hook and its
kernels from a backend that lists the cell's name in ``Backend.cells``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

LAYER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell: its name, gate count, state tensors and the options that apply.

    ``state`` names the tensors a layer carries from step to step, each ``[N, H]``: ``("h",)``
    or ``("h", "c")``; a layer's state is a tuple in this order. ``nonlinearities`` lists the
    values ``model.nonlinearity`` may take for it (the first is the default; other cells ignore
    the option). ``forget_gate`` is the index of the gate ``model.forget_bias`` sets, or None
    when that option does not apply to the cell.
    """

    name: str
    gates: int
    state: tuple[str, ...] = ("h",)
    nonlinearities: tuple[str, ...] = ("tanh",)
    forget_gate: int | None = None
    description: str = ""

    def layer_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter of one layer, keyed as ``LAYER_KEYS``."""
        G, H = self.gates, hidden_size
        return {
            "weight_ih": (G * H, input_size),
            "weight_hh": (G * H, H),
            "bias_ih": (G * H,),
            "bias_hh": (G * H,),
        }

    def parameter_count(
        self, input_size: int, hidden_size: int, layers: int, directions: int = 1
    ) -> int:
        """Recurrent parameters of a stack of ``layers`` layers (the first reads the input),
        each with ``directions`` directions (2: bidirectional; layers above read both)."""
        return directions * sum(
            int(np.prod(s))
            for k in range(layers)
            for s in self.layer_shapes(
                input_size if k == 0 else directions * hidden_size, hidden_size
            ).values()
        )

    def zero_state(self, batch: int, hidden_size: int, dtype) -> tuple[np.ndarray, ...]:
        """One layer's initial state: a zero ``[batch, hidden_size]`` array per state tensor."""
        return tuple(np.zeros((batch, hidden_size), dtype) for _ in self.state)


RNN = CellSpec(
    "rnn",
    1,
    ("h",),
    ("tanh", "relu"),
    description="Elman RNN (torch.nn.RNN): h_t = act(W_ih x_t + b_ih + W_hh h + b_hh)",
)
LSTM = CellSpec(
    "lstm",
    4,
    ("h", "c"),
    forget_gate=1,
    description="LSTM (torch.nn.LSTM): gates i, f, g, o; state (h, c)",
)
GRU = CellSpec("gru", 3, description="GRU (torch.nn.GRU): gates r, z, n")
BUILTIN_CELLS: dict[str, CellSpec] = {c.name: c for c in (RNN, LSTM, GRU)}


def cell_spec(name: str, cells: Mapping[str, CellSpec] | None = None) -> CellSpec:
    """The spec of cell ``name`` from ``cells`` (a registry's table), else the built-in one."""
    table = {**BUILTIN_CELLS, **(cells or {})}
    if name not in table:
        raise KeyError(
            f"unknown cell {name!r} (known here: {', '.join(table)}; a plugin's "
            f"cell needs the registry's table, Registry.cells)"
        )
    return table[name]
