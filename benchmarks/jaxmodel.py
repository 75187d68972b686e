"""The JAX contender's model: what a competent JAX user writes for the benchmark's cases.

float64 through ``jax_enable_x64``; the recurrence is a ``lax.scan`` over time with every input
projection done before it as one product; the loss and gradients come from ``value_and_grad``;
the optimizer is optax's, chained after the same clipping as the rnnlab case
(``optax.clip_by_global_norm`` or ``optax.clip`` by value). Adam is ``optax.adam``; Adagrad is
written here as an optax transformation with PyTorch's (and rnnlab's) rule, ``p -= lr * g /
(sqrt(sum g^2) + eps)`` from a zero sum, because ``optax.adagrad`` puts eps under the square root
and starts its sum at 0.1 (the same cost; the contenders then compute the same thing).

The cells are written from their equations (docs/cells.md), one layer, parameters named as
rnnlab names them (``rnn.weight_ih_l0``...), so the same dict of arrays trains here, in rnnlab
and in PyTorch:

- rnn, lstm, gru: ``torch.nn.RNN/LSTM/GRU``'s equations;
- mingru: ``h = (1 - z) h + z h~``; minlstm: ``h = f/(f+i) h + i/(f+i) h~``;
- indrnn: ``h = act(W x + b + u h)``;
- lru: complex diagonal ``h = lambda h + gamma (B x)``, ``y = act(Re(C h) + D x)``.

Two ways to run an epoch (:class:`Trainer`): ``step``, the minibatch step under ``jit`` called
from a Python loop, and ``epoch``, the whole epoch under ``jit`` (a ``lax.scan`` over the
minibatches, the last shorter one stepped after it). Both are compiled ahead of time
(``jit(...).lower(...).compile()``), so compilation is timed apart and never inside an epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

jax.config.update("jax_enable_x64", True)

COMPLEX_STATE = {"lru"}  # cells whose state is complex
VARIANTS = ("step", "epoch")


@dataclass(frozen=True)
class Spec:
    """What the model computes (hashable: static under jit)."""

    cell: str
    hidden_size: int
    nonlinearity: str
    loss: str = "mse"  # mse | xent
    target: str = "last"  # last | every
    bidirectional: bool = False


@dataclass(frozen=True)
class Training:
    """The optimizer and clipping of the rnnlab case (its TrainConfig's fields)."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    grad_clip: str = "norm"
    grad_clip_value: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


# -- the cells -----------------------------------------------------------------------------------
def activation(name: str):
    return {
        "tanh": jnp.tanh,
        "relu": jax.nn.relu,
        "gelu": lambda a: jax.nn.gelu(a, approximate=False),
        "identity": lambda a: a,
    }[name]


def rnn(w, x, state, act):
    xw = x @ w["weight_ih"].T + w["bias_ih"] + w["bias_hh"]

    def step(h, a):
        h = act(a + h @ w["weight_hh"].T)
        return h, h

    h, hs = lax.scan(step, state[0], xw)
    return hs, (h,)


def lstm(w, x, state, act):
    xw = x @ w["weight_ih"].T + w["bias_ih"] + w["bias_hh"]

    def step(carry, a):
        h, c = carry
        i, f, g, o = jnp.split(a + h @ w["weight_hh"].T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    final, hs = lax.scan(step, tuple(state), xw)
    return hs, final


def gru(w, x, state, act):
    xw = x @ w["weight_ih"].T + w["bias_ih"]

    def step(h, a):
        xr, xz, xn = jnp.split(a, 3, axis=-1)
        hr, hz, hn = jnp.split(h @ w["weight_hh"].T + w["bias_hh"], 3, axis=-1)
        r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h = (1.0 - z) * n + z * h
        return h, h

    h, hs = lax.scan(step, state[0], xw)
    return hs, (h,)


def mingru(w, x, state, act):
    z, cand = jnp.split(x @ w["weight_ih"].T + w["bias_ih"], 2, axis=-1)
    z = jax.nn.sigmoid(z)

    def step(h, zc):
        h = (1.0 - zc[0]) * h + zc[0] * zc[1]
        return h, h

    h, hs = lax.scan(step, state[0], (z, cand))
    return hs, (h,)


def minlstm(w, x, state, act):
    f, i, cand = jnp.split(x @ w["weight_ih"].T + w["bias_ih"], 3, axis=-1)
    f, i = jax.nn.sigmoid(f), jax.nn.sigmoid(i)
    s = f + i

    def step(h, fic):
        h = fic[0] * h + fic[1] * fic[2]
        return h, h

    h, hs = lax.scan(step, state[0], (f / s, i / s, cand))
    return hs, (h,)


def indrnn(w, x, state, act):
    xw = x @ w["weight_ih"].T + w["bias_ih"]

    def step(h, a):
        h = act(a + w["weight_hh"] * h)
        return h, h

    h, hs = lax.scan(step, state[0], xw)
    return hs, (h,)


def lru(w, x, state, act):
    lam = jnp.exp(-jnp.exp(w["nu_log"]) + 1j * jnp.exp(w["theta_log"]))
    u = jnp.exp(w["gamma_log"]) * (x @ w["B_re"].T + 1j * (x @ w["B_im"].T))

    def step(h, u_t):
        h = lam * h + u_t
        return h, h

    h, hs = lax.scan(step, state[0], u)
    y = act(hs.real @ w["C_re"].T - hs.imag @ w["C_im"].T + x @ w["D"].T)
    return y, (h,)


CELLS = {f.__name__: f for f in (rnn, lstm, gru, mingru, minlstm, indrnn, lru)}


def zero_state(cell: str, batch: int, hidden: int, dtype) -> tuple:
    if cell in COMPLEX_STATE:
        dtype = jnp.result_type(dtype, jnp.complex64)
    shape = (batch, hidden)
    return (
        (jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))
        if cell == "lstm"
        else (jnp.zeros(shape, dtype),)
    )


def layer(params: dict, reverse: bool = False) -> dict:
    """One direction of layer 0's tensors, keyed as the cell's (``weight_ih``...)."""
    suffix = "_l0_reverse" if reverse else "_l0"
    return {
        k[4 : -len(suffix)]: v
        for k, v in params.items()
        if k.startswith("rnn.") and k.endswith(suffix)
    }


# -- model and loss ------------------------------------------------------------------------------
def forward(spec: Spec, params: dict, x, state):
    """Head outputs and the final state (forward direction) of ``x [T, N, I]`` from ``state``
    (None: zeros)."""
    cell, act = CELLS[spec.cell], activation(spec.nonlinearity)
    dtype = params["head.weight"].dtype
    zeros = zero_state(spec.cell, x.shape[1], spec.hidden_size, dtype)
    hs, final = cell(layer(params), x, zeros if state is None else state, act)
    if spec.bidirectional:  # the reverse direction reads the sequence back
        hs_rev, _ = cell(layer(params, True), x[::-1], zeros, act)
        hs = jnp.concatenate([hs, hs_rev[::-1]], axis=-1)
        top = jnp.concatenate([hs[-1, :, : spec.hidden_size], hs[0, :, spec.hidden_size :]], -1)
    else:
        top = hs[-1]
    if spec.target == "every":
        top = hs
    return top @ params["head.weight"].T + params["head.bias"], final


def loss_value(spec: Spec, out, y):
    """PyTorch's MSELoss / CrossEntropyLoss (mean), as rnnlab's."""
    if spec.loss == "mse":
        return jnp.mean((out - y) ** 2)
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))


def loss_and_final(params, spec: Spec, x, y, state=None):
    out, final = forward(spec, params, x, state)
    return loss_value(spec, out, y), final


def loss_and_grads(spec: Spec, params: dict, x, y, state=None):
    """``((loss, final_state), grads)``: ``value_and_grad`` of the loss."""
    return jax.value_and_grad(loss_and_final, has_aux=True)(params, spec, x, y, state)


# -- the optimizer -------------------------------------------------------------------------------
def pytorch_adagrad(learning_rate: float, eps: float) -> optax.GradientTransformation:
    """Adagrad with PyTorch's rule: ``sum += g^2; p -= lr * g / (sqrt(sum) + eps)``."""

    def init(params):
        return jax.tree.map(jnp.zeros_like, params)

    def update(grads, total, params=None):
        total = jax.tree.map(lambda s, g: s + g * g, total, grads)
        updates = jax.tree.map(lambda g, s: -learning_rate * g / (jnp.sqrt(s) + eps), grads, total)
        return updates, total

    return optax.GradientTransformation(init, update)


def optimizer(train: Training) -> optax.GradientTransformation:
    clip = {
        "norm": lambda v: optax.clip_by_global_norm(v),
        "value": lambda v: optax.clip(v),
        "none": lambda v: optax.identity(),
    }[train.grad_clip](train.grad_clip_value)
    if train.optimizer == "adam":
        opt = optax.adam(train.learning_rate, train.beta1, train.beta2, train.eps)
    elif train.optimizer == "adagrad":
        opt = pytorch_adagrad(train.learning_rate, train.eps)
    else:
        raise ValueError(f"no {train.optimizer!r} here (adam, adagrad)")
    return optax.chain(clip, opt)


def make_step(spec: Spec, train: Training):
    """``step(params, opt_state, x, y, state) -> (params, opt_state, loss, final_state)``."""
    opt = optimizer(train)
    grad = jax.value_and_grad(loss_and_final, has_aux=True)

    def step(params, opt_state, x, y, state=None):
        (loss, final), grads = grad(params, spec, x, y, state)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, final

    return opt, step


# -- training epochs -----------------------------------------------------------------------------
def _compile(fn, donate, *args):
    """``fn`` compiled ahead of time for these arguments' shapes; (compiled, seconds)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
    return compiled, time.perf_counter() - t0


class Trainer:
    """One model trained by epochs, one way (``variant``: "step" or "epoch").

    Windowed data (``stateful`` False): ``x [T, S, I]``, ``y [S, O]``; an epoch takes the
    sequences in ``order`` in minibatches of ``batch_size`` (the last one shorter), each step
    from a zero state. Stateful data (min-char-rnn's scheme): ``x`` and ``y`` are ``[L]``
    character indices of one stream, one-hot over ``vocab`` inside the step; an epoch walks the
    stream in chunks of ``batch_size`` steps (the last shorter), the state carried from chunk
    to chunk from zeros, the gradient stopping at each chunk's start."""

    def __init__(self, spec, train, params, x, y, batch_size, variant, stateful=False, vocab=0):
        self.spec, self.variant, self.B = spec, variant, batch_size
        self.stateful, self.vocab = stateful, vocab
        self.params = {k: jnp.asarray(v) for k, v in params.items()}
        self.dtype = self.params["head.weight"].dtype
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        self.opt, self.step = make_step(spec, train)
        self.opt_state = self.opt.init(self.params)
        self.n = int(self.x.shape[0] if stateful else self.x.shape[1])
        self.full, self.rest = divmod(self.n, batch_size)
        self.compile_seconds = 0.0
        if stateful:
            self._compile_stateful()
        else:
            self._compile_windowed()

    # windowed: sequences by index -------------------------------------------------------------
    def _windowed_step(self, params, opt_state, x, y, idx):
        params, opt_state, loss, _ = self.step(params, opt_state, x[:, idx], y[idx])
        return params, opt_state, loss

    def _windowed_epoch(self, params, opt_state, x, y, order):
        batches = order[: self.full * self.B].reshape(self.full, self.B)

        def body(carry, idx):
            params, opt_state, loss = self._windowed_step(*carry, x, y, idx)
            return (params, opt_state), loss

        (params, opt_state), losses = lax.scan(body, (params, opt_state), batches)
        if self.rest:
            params, opt_state, last = self._windowed_step(
                params, opt_state, x, y, order[self.full * self.B :]
            )
            losses = jnp.append(losses, last)
        return params, opt_state, losses

    def _compile_windowed(self):
        args = (self.params, self.opt_state, self.x, self.y)
        if self.variant == "epoch":
            order = np.arange(self.n)
            self.run, s = _compile(self._windowed_epoch, (0, 1), *args, order)
            self.compile_seconds = s
            return
        self.batch_fns = {}
        for size in {self.B, self.rest} - {0}:
            fn, s = _compile(self._windowed_step, (0, 1), *args, np.arange(size))
            self.batch_fns[size], self.compile_seconds = fn, self.compile_seconds + s

    # stateful: one stream in chunks -------------------------------------------------------------
    def _chunk_step(self, params, opt_state, h, x, y, start, size):
        xs = lax.dynamic_slice_in_dim(x, start, size)
        ys = lax.dynamic_slice_in_dim(y, start, size)
        onehot = jax.nn.one_hot(xs, self.vocab, dtype=self.dtype)[:, None, :]  # [k, 1, V]
        params, opt_state, loss, final = self.step(params, opt_state, onehot, ys[:, None], h)
        return params, opt_state, final, loss

    def _stateful_epoch(self, params, opt_state, h, x, y):
        def body(carry, start):
            params, opt_state, h, loss = self._chunk_step(*carry, x, y, start, self.B)
            return (params, opt_state, h), loss

        starts = jnp.arange(self.full) * self.B
        (params, opt_state, h), losses = lax.scan(body, (params, opt_state, h), starts)
        if self.rest:
            params, opt_state, h, last = self._chunk_step(
                params, opt_state, h, x, y, self.full * self.B, self.rest
            )
            losses = jnp.append(losses, last)
        return params, opt_state, losses

    def _zero_state(self):
        return zero_state(self.spec.cell, 1, self.spec.hidden_size, self.dtype)

    def _compile_stateful(self):
        args = (self.params, self.opt_state, self._zero_state(), self.x, self.y)
        if self.variant == "epoch":
            self.run, self.compile_seconds = _compile(self._stateful_epoch, (0, 1), *args)
            return
        self.chunk_fns = {}
        for size in {self.B, self.rest} - {0}:

            def chunk(params, opt_state, h, x, y, start, size=size):
                return self._chunk_step(params, opt_state, h, x, y, start, size)

            fn, s = _compile(chunk, (0, 1), *args, np.int64(0))
            self.chunk_fns[size], self.compile_seconds = fn, self.compile_seconds + s

    # ------------------------------------------------------------------------------------------
    def epoch(self, order=None) -> np.ndarray:
        """One training epoch (``order``: the windowed sequences' order); its batch losses,
        once every result is ready."""
        p, s = self.params, self.opt_state
        if self.stateful and self.variant == "epoch":
            p, s, losses = self.run(p, s, self._zero_state(), self.x, self.y)
        elif self.stateful:
            h, losses = self._zero_state(), []
            for start in range(0, self.n, self.B):
                size = min(self.B, self.n - start)
                p, s, h, loss = self.chunk_fns[size](p, s, h, self.x, self.y, np.int64(start))
                losses.append(loss)
        elif self.variant == "epoch":
            p, s, losses = self.run(p, s, self.x, self.y, np.asarray(order))
        else:
            losses = []
            for start in range(0, self.n, self.B):
                idx = np.asarray(order[start : start + self.B])
                p, s, loss = self.batch_fns[len(idx)](p, s, self.x, self.y, idx)
                losses.append(loss)
        self.params, self.opt_state = jax.block_until_ready((p, s))
        return np.asarray(jnp.stack(losses) if isinstance(losses, list) else losses)

    def numpy_params(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.params.items()}


def cores_busy(cpu_seconds: float, wall_seconds: float) -> float:
    """The process's CPU time over wall time: how many cores an epoch kept busy on average."""
    return cpu_seconds / wall_seconds if wall_seconds > 0 else math.nan
