"""Recurrent cells, each described once: the config, the model, the memory check, the
conformance kit, the diagnostics, interchange and every backend read a cell's :class:`CellSpec`.

A cell owns its parameters: its spec lists one layer's tensors (:class:`ParamSpec`: a key, a
shape as a function of the layer's input size I and hidden size H, and how it is drawn), the
state tensors the layer carries from step to step (each ``[N, H]``, possibly complex), and the
name of its per-step output. A layer's parameter ``key`` of layer k is stored as
``rnn.{key}_l{k}`` (``_reverse`` appended for the reverse direction of a bidirectional layer).

The built-in ``rnn``, ``lstm`` and ``gru`` are PyTorch's ``nn.RNN``, ``nn.LSTM`` (gates i, f, g,
o; state ``(h, c)``) and ``nn.GRU`` (gates r, z, n), with PyTorch's four tensors per layer
(``weight_ih [G*H, I]``, ``weight_hh [G*H, H]``, ``bias_ih [G*H]``, ``bias_hh [G*H]``) and
PyTorch's draws. The others (``mingru``, ``minlstm``, ``indrnn``, ``lru``) are described in
docs/cells.md. A plugin adds a cell by returning its spec from the ``register_cells`` hook; a
spec whose ``kernels`` holds ``"numpy"`` kernels runs on the reference backend with nothing
else (see docs/writing-plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LAYER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # PyTorch's four, per layer

# model settings a cell's initialisation may read, and their values when off / not set; a
# cell lists the ones that apply to it in CellSpec.options
CELL_OPTIONS: dict[str, Any] = {
    "forget_bias": 0.0,
    "chrono_tmax": 0,
    "r_min": 0.0,
    "r_max": 1.0,
    "max_phase": 6.28,
}


@dataclass(frozen=True)
class InitContext:
    """What a parameter's initialisation may read: the layer's sizes and the model's
    cell options (keys of :data:`CELL_OPTIONS`)."""

    input_size: int
    hidden_size: int
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, key: str):
        return self.options.get(key, CELL_OPTIONS[key])


Shape = Callable[[int, int], tuple[int, ...]]
# init(rng, shape, drawn, ctx) -> array: ``drawn`` holds this layer's tensors drawn before it
Init = Callable[[np.random.Generator, tuple[int, ...], dict, InitContext], np.ndarray]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor of a layer: its key, its shape ``shape(I, H)`` and its draw
    ``init(rng, shape, drawn, ctx)``. A layer's tensors are drawn in the order the spec lists
    them. Parameters are real (a complex quantity is stored as two real tensors)."""

    key: str
    shape: Shape
    init: Init
    description: str = ""


# -- draws -------------------------------------------------------------------------------------
def uniform_hidden(rng, shape, drawn, ctx) -> np.ndarray:
    """U(-1/sqrt(H), 1/sqrt(H)): PyTorch's nn.RNN/LSTM/GRU default."""
    bound = 1.0 / np.sqrt(ctx.hidden_size)
    return rng.uniform(-bound, bound, shape)


def uniform_input(rng, shape, drawn, ctx) -> np.ndarray:
    """U(-1/sqrt(I), 1/sqrt(I)): how torch.nn.Linear(I, ...) draws its weight and bias."""
    bound = 1.0 / np.sqrt(ctx.input_size)
    return rng.uniform(-bound, bound, shape)


def uniform_unit(rng, shape, drawn, ctx) -> np.ndarray:
    """U(0, 1)."""
    return rng.uniform(0.0, 1.0, shape)


def pytorch_params(gates: int) -> tuple[ParamSpec, ...]:
    """PyTorch's four tensors of a cell with ``gates`` stacked gate blocks, drawn as PyTorch
    draws them."""
    return (
        ParamSpec("weight_ih", lambda I, H: (gates * H, I), uniform_hidden),
        ParamSpec("weight_hh", lambda I, H: (gates * H, H), uniform_hidden),
        ParamSpec("bias_ih", lambda I, H: (gates * H,), uniform_hidden),
        ParamSpec("bias_hh", lambda I, H: (gates * H,), uniform_hidden),
    )


# -- the spec ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell.

    - ``gates``: stacked gate blocks of PyTorch's layout; with ``params`` left None the layer
      has PyTorch's four tensors of ``gates * H`` rows, drawn U(-1/sqrt(H), 1/sqrt(H)).
    - ``state``: the tensors a layer carries from step to step, each ``[N, H]``, in order;
      ``complex_state`` names those that are complex (complex128 for float64 models,
      complex64 for float32).
    - ``nonlinearities``: the values ``model.nonlinearity`` may take for it, the first being
      the cell's default.
    - ``forget_gate``: the gate block ``model.forget_bias`` and chrono initialisation set (None:
      no forget gate).
    - ``params``: one layer's tensors (:class:`ParamSpec`).
    - ``output``: the name of the layer's per-step output (what ``layer_forward`` returns as
      ``hs`` and the head reads); a state tensor's name, or another name when it is computed
      from the state (the lru's ``y``).
    - ``options``: the cell options (keys of :data:`CELL_OPTIONS`) that apply to it.
    - ``init_layer(layer, rng, ctx)``: adjusts one layer's freshly drawn tensors (a dict keyed
      as ``params``) in place, after the draws of ``params``: ``forget_bias``, chrono init.
    - ``kernels``: per backend name, an object with ``forward(w, x, state0, nonlinearity,
      lengths)``, ``backward(w, cache, dhs)`` and optionally ``state_gradients(w, cache, dhs)``
      (see :class:`rnnlab.specs.Backend`); ``kernels["numpy"]`` makes the reference backend
      run the cell.
    - ``retention(w, H)``: what retention means for the cell, from one layer's tensors, as
      ``{measure: value}`` (None: the spectral radius of each gate block of ``weight_hh``
      when that is a matrix).
    - ``retain_gate(w, x)``: the retain gate ``[T, N, H]`` of a cell whose gates depend on its
      input only, for the diagnostics' mean retain gate (None: not defined).
    """

    name: str
    gates: int = 1
    state: tuple[str, ...] = ("h",)
    nonlinearities: tuple[str, ...] = ("tanh",)
    forget_gate: int | None = None
    description: str = ""
    params: tuple[ParamSpec, ...] | None = None
    output: str = "h"
    complex_state: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    init_layer: Callable[[dict, np.random.Generator, InitContext], None] | None = None
    kernels: Mapping[str, Any] = field(default_factory=dict)
    retention: Callable[[dict, int], dict[str, float]] | None = None
    retain_gate: Callable[[dict, np.ndarray], np.ndarray] | None = None

    @property
    def parameters(self) -> tuple[ParamSpec, ...]:
        """One layer's tensors, in drawing order."""
        return self.params if self.params is not None else pytorch_params(self.gates)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.parameters)

    @property
    def default_nonlinearity(self) -> str:
        return self.nonlinearities[0]

    def layer_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter of one layer, by key."""
        return {p.key: tuple(p.shape(input_size, hidden_size)) for p in self.parameters}

    def draw_layer(
        self, rng: np.random.Generator, ctx: InitContext, dtype
    ) -> dict[str, np.ndarray]:
        """One direction of one layer, drawn (float64 draws cast to ``dtype``) in order, then
        adjusted by ``init_layer``."""
        layer: dict[str, np.ndarray] = {}
        for p in self.parameters:
            shape = tuple(p.shape(ctx.input_size, ctx.hidden_size))
            layer[p.key] = np.asarray(p.init(rng, shape, layer, ctx)).astype(dtype)
        if self.init_layer is not None:
            self.init_layer(layer, rng, ctx)
        elif self.forget_gate is not None and ctx.option("forget_bias") != 0:
            set_bias(layer, self.forget_gate, ctx.hidden_size, ctx.option("forget_bias"))
        return layer

    @property
    def applicable_options(self) -> tuple[str, ...]:
        """The cell options that apply: ``options``, or ``forget_bias`` alone for a cell that
        declares only a forget gate."""
        if self.options or self.forget_gate is None:
            return self.options
        return ("forget_bias",)

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

    def state_dtype(self, name: str, dtype) -> np.dtype:
        """The dtype of state tensor ``name`` in a model of real ``dtype``."""
        dtype = np.dtype(dtype)
        return np.result_type(dtype, np.complex64) if name in self.complex_state else dtype

    def zero_state(self, batch: int, hidden_size: int, dtype) -> tuple[np.ndarray, ...]:
        """One layer's initial state: a zero ``[batch, hidden_size]`` array per state tensor."""
        return tuple(np.zeros((batch, hidden_size), self.state_dtype(s, dtype)) for s in self.state)

    def nonlinearity(self, value: str | None) -> str:
        """``value`` when the cell accepts it (None: the cell's default); else ValueError
        naming the cell and the values it accepts."""
        if value is None:
            return self.default_nonlinearity
        if value not in self.nonlinearities:
            raise ValueError(
                f"cell {self.name!r} accepts nonlinearity "
                f"{', '.join(map(repr, self.nonlinearities))}, not {value!r}"
            )
        return value


# -- initialisation options --------------------------------------------------------------------
def gate_slice(gate: int, H: int) -> slice:
    return slice(gate * H, (gate + 1) * H)


def chrono_bias(rng: np.random.Generator, H: int, tmax: float) -> np.ndarray:
    """Chrono initialisation's bias (Tallec & Ollivier 2018): log U(1, tmax - 1), per unit."""
    return np.log(rng.uniform(1.0, tmax - 1.0, H))


def set_bias(layer: dict, gate: int, H: int, value) -> None:
    """The total bias of gate block ``gate`` becomes ``value``: in bias_ih, bias_hh's 0."""
    layer["bias_ih"][gate_slice(gate, H)] = value
    layer["bias_hh"][gate_slice(gate, H)] = 0.0


def lstm_init(layer: dict, rng: np.random.Generator, ctx: InitContext) -> None:
    """``forget_bias`` (when not 0): the forget gate's total bias; ``chrono_tmax = T`` (when
    not 0): forget bias log U(1, T-1), per unit, and the input gate's bias its negative."""
    H = ctx.hidden_size
    if ctx.option("forget_bias") != 0:
        set_bias(layer, 1, H, ctx.option("forget_bias"))
    if ctx.option("chrono_tmax"):
        b = chrono_bias(rng, H, ctx.option("chrono_tmax"))
        set_bias(layer, 1, H, b)
        set_bias(layer, 0, H, -b)


def gru_init(layer: dict, rng: np.random.Generator, ctx: InitContext) -> None:
    """``chrono_tmax = T`` (when not 0): the update gate z's bias log U(1, T-1), per unit
    (z is the gru's retain gate: h_t = (1 - z) n + z h_{t-1})."""
    if ctx.option("chrono_tmax"):
        H = ctx.hidden_size
        set_bias(layer, 1, H, chrono_bias(rng, H, ctx.option("chrono_tmax")))


# -- the lru's draws (Orvieto et al. 2023's reference code) ------------------------------------
def lru_nu_log(rng, shape, drawn, ctx) -> np.ndarray:
    """|lambda| uniform on the ring r_min <= |lambda| <= r_max (uniform in area)."""
    r_min, r_max = ctx.option("r_min"), ctx.option("r_max")
    u = rng.uniform(size=shape)
    return np.log(-0.5 * np.log(u * (r_max**2 - r_min**2) + r_min**2))


def lru_theta_log(rng, shape, drawn, ctx) -> np.ndarray:
    """The phase of lambda uniform in [0, max_phase]."""
    return np.log(ctx.option("max_phase") * rng.uniform(size=shape))


def lru_gamma_log(rng, shape, drawn, ctx) -> np.ndarray:
    """log sqrt(1 - |lambda|^2): normalises the input (draws nothing)."""
    modulus = np.exp(-np.exp(drawn["nu_log"].astype(np.float64)))
    return np.log(np.sqrt(1.0 - modulus**2))


def normal_over(fan: Callable[[InitContext], float]) -> Init:
    def draw(rng, shape, drawn, ctx):
        return rng.normal(size=shape) / np.sqrt(fan(ctx))

    return draw


def lru_lambda(w: dict) -> np.ndarray:
    """lambda = exp(-exp(nu_log) + i exp(theta_log)), complex ``[H]``."""
    nu, theta = w["nu_log"].astype(np.float64), w["theta_log"].astype(np.float64)
    return np.exp(-np.exp(nu) + 1j * np.exp(theta))


# -- retention -----------------------------------------------------------------------------------
def spread(name: str, values: np.ndarray) -> dict[str, float]:
    return {
        f"{name}.min": float(np.min(values)),
        f"{name}.median": float(np.median(values)),
        f"{name}.max": float(np.max(values)),
    }


def lru_retention(w: dict, H: int) -> dict[str, float]:
    """|lambda|: min, median, max."""
    return spread("lambda_abs", np.abs(lru_lambda(w)))


def indrnn_retention(w: dict, H: int) -> dict[str, float]:
    """|u|: min, median, max."""
    return spread("u_abs", np.abs(w["weight_hh"].astype(np.float64)))


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def mingru_retain(w: dict, x: np.ndarray) -> np.ndarray:
    """1 - z, the share of h_{t-1} kept."""
    H = w["weight_ih"].shape[0] // 2
    return 1.0 - sigmoid(x @ w["weight_ih"][:H].T + w["bias_ih"][:H])


def minlstm_retain(w: dict, x: np.ndarray) -> np.ndarray:
    """f' = f / (f + i), the share of h_{t-1} kept."""
    H = w["weight_ih"].shape[0] // 3
    f = sigmoid(x @ w["weight_ih"][:H].T + w["bias_ih"][:H])
    i = sigmoid(x @ w["weight_ih"][H : 2 * H].T + w["bias_ih"][H : 2 * H])
    return f / (f + i)


# -- the built-in cells --------------------------------------------------------------------------
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
    options=("forget_bias", "chrono_tmax"),
    init_layer=lstm_init,
)
GRU = CellSpec(
    "gru",
    3,
    description="GRU (torch.nn.GRU): gates r, z, n",
    options=("chrono_tmax",),
    init_layer=gru_init,
)
MINGRU = CellSpec(
    "mingru",
    2,
    nonlinearities=("identity",),
    description="minGRU (Feng et al. 2024): z = sigmoid(W_z x + b_z), h~ = W_h x + b_h, "
    "h = (1 - z) h + z h~",
    params=(
        ParamSpec("weight_ih", lambda I, H: (2 * H, I), uniform_input, "rows z, then h~"),
        ParamSpec("bias_ih", lambda I, H: (2 * H,), uniform_input),
    ),
    retain_gate=mingru_retain,
)
MINLSTM = CellSpec(
    "minlstm",
    3,
    nonlinearities=("identity",),
    description="minLSTM (Feng et al. 2024): f, i = sigmoid(W x + b), h~ = W_h x + b_h, "
    "h = f/(f+i) h + i/(f+i) h~",
    params=(
        ParamSpec("weight_ih", lambda I, H: (3 * H, I), uniform_input, "rows f, i, h~"),
        ParamSpec("bias_ih", lambda I, H: (3 * H,), uniform_input),
    ),
    retain_gate=minlstm_retain,
)
INDRNN = CellSpec(
    "indrnn",
    1,
    nonlinearities=("relu", "tanh"),
    description="IndRNN (Li et al. 2018): h = act(W x + b + u * h), u a vector",
    params=(
        ParamSpec("weight_ih", lambda I, H: (H, I), uniform_input),
        ParamSpec("weight_hh", lambda I, H: (H,), uniform_unit, "u, per unit"),
        ParamSpec("bias_ih", lambda I, H: (H,), uniform_input),
    ),
    retention=indrnn_retention,
)
LRU = CellSpec(
    "lru",
    1,
    nonlinearities=("gelu", "tanh", "relu", "identity"),
    description="Linear Recurrent Unit (Orvieto et al. 2023): complex diagonal "
    "h = lambda h + gamma (B x), y = act(Re(C h) + D x)",
    params=(
        ParamSpec("nu_log", lambda I, H: (H,), lru_nu_log),
        ParamSpec("theta_log", lambda I, H: (H,), lru_theta_log),
        ParamSpec("gamma_log", lambda I, H: (H,), lru_gamma_log),
        ParamSpec("B_re", lambda I, H: (H, I), normal_over(lambda c: 2 * c.input_size)),
        ParamSpec("B_im", lambda I, H: (H, I), normal_over(lambda c: 2 * c.input_size)),
        ParamSpec("C_re", lambda I, H: (H, H), normal_over(lambda c: c.hidden_size)),
        ParamSpec("C_im", lambda I, H: (H, H), normal_over(lambda c: c.hidden_size)),
        ParamSpec("D", lambda I, H: (H, I), uniform_input),
    ),
    output="y",
    complex_state=("h",),
    options=("r_min", "r_max", "max_phase"),
    retention=lru_retention,
)
BUILTIN_CELLS: dict[str, CellSpec] = {
    c.name: c for c in (RNN, LSTM, GRU, MINGRU, MINLSTM, INDRNN, LRU)
}
# the cells PyTorch has, with its four tensors per layer (what ONNX's RNN/LSTM/GRU operators
# and the numba backend's kernels implement)
PYTORCH_CELLS = ("rnn", "lstm", "gru")


def cell_spec(name: str, cells: Mapping[str, CellSpec] | None = None) -> CellSpec:
    """The spec of cell ``name`` from ``cells`` (a registry's table), else the built-in one."""
    table = {**BUILTIN_CELLS, **(cells or {})}
    if name not in table:
        raise KeyError(
            f"unknown cell {name!r} (known here: {', '.join(table)}; a plugin's "
            f"cell needs the registry's table, Registry.cells)"
        )
    return table[name]
