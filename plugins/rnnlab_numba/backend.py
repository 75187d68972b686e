"""The numba backend: the reference's layer contract over jitted row kernels, plus a fused
epoch runner (see epoch.py) for the plans it supports."""

from __future__ import annotations

import contextlib

import numpy as np

from rnnlab.plugin import Backend, cell_spec

from . import diagonal, epoch, forward, gru, lru, lstm, rnn
from . import lengths as packing
from .jitcache import compiling

# each cell's layer contract, time-major arrays in and out:
# layer_forward(w, x, state0, active, nonlinearity), layer_backward(w, cache, dhs)
CELLS = {
    "rnn": rnn,
    "lstm": lstm,
    "gru": gru,
    "mingru": diagonal.MINGRU,
    "minlstm": diagonal.MINLSTM,
    "indrnn": diagonal.INDRNN,
    "lru": lru,
}
# the cells whose layer contract takes ``relu`` (a bool) rather than the nonlinearity's name
RELU_FLAG = ("rnn", "lstm", "gru")


_called: set[tuple] = set()  # (direction, cell, dtype): layer kernels called in this process


def _said(way: str, cell: str, dtype):
    """``jitcache.compiling`` for the first call of a layer kernel in this process (it may
    compile then: the fused epoch and forward do not need them, so nothing compiled them
    before), else nothing."""
    key = (way, cell, np.dtype(dtype).name)
    if key in _called:
        return contextlib.nullcontext()
    _called.add(key)
    return compiling(f"the {cell} layer's {way} kernels ({key[2]})")


def _forward(cell, weights, x, state0, nonlinearity, active):
    """One layer over ``x [T, N, I]``, step t on the rows ``[:active[t]]``: ``hs [T, N, H]``
    (the layer's output), the states of every step (``(hs,)``, ``(hs, cs)`` or the lru's
    complex ``(h,)``, time-major) and the cache."""
    act = nonlinearity == "relu" if cell in RELU_FLAG else nonlinearity
    with _said("forward", cell, x.dtype):
        return CELLS[cell].layer_forward(weights, x, state0, active, act)


def _backward(cell, weights, cache, dhs):
    with _said("backward", cell, dhs.dtype):
        return CELLS[cell].layer_backward(weights, cache, dhs)


class NumbaBackend(Backend):
    name = "numba"
    cells = tuple(CELLS)
    dtypes = ("float64", "float32")
    features = frozenset({"lengths"})
    epoch_features = epoch.FEATURES
    forward_features = forward.FEATURES

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity=None, lengths=None):
        """The layer contract. With ``lengths`` the rows run sorted longest first (see
        lengths.py) and come back in their own order."""
        nonlinearity = nonlinearity or cell_spec(cell).default_nonlinearity
        T, N = x.shape[:2]
        if lengths is None:
            hs, states, cache = _forward(cell, weights, x, state0, nonlinearity, packing.full(T, N))
            return hs, tuple(s[-1].copy() for s in states), (cache, None)
        lengths = packing.check(lengths, T, N)
        perm, inverse, active = packing.pack(lengths, T)
        hs, states, cache = _forward(
            cell, weights, x[:, perm], tuple(s[perm] for s in state0), nonlinearity, active
        )
        # sequence n is sorted row inverse[n]; its final state is at its own last step
        final = tuple(s[lengths - 1, inverse] for s in states)
        return hs[:, inverse], final, (cache, (perm, inverse))

    def layer_backward(self, cell, weights, cache, dhs):
        cache, order = cache
        if order is None:
            return _backward(cell, weights, cache, dhs)
        perm, inverse = order
        grads, dx = _backward(cell, weights, cache, dhs[:, perm])
        return grads, dx[:, inverse]

    def state_gradients(self, cell, weights, cache, dhs):
        """dL/d(state)_t of the layer's first state tensor at every step, ``[T, N, H]``
        (complex for the lru's complex state), 0 at padded steps, from the cache of
        :meth:`layer_forward` and the gradient ``dhs`` of its outputs; None for rnn, lstm and
        gru (the diagnostics derive theirs from ``layer_backward``). Its kernels compile on
        first use, apart from the fused epoch's."""
        kernels = CELLS[cell]
        if not hasattr(kernels, "state_gradients"):
            return None
        cache, order = cache
        with _said("state gradient", cell, dhs.dtype):
            if order is None:
                return kernels.state_gradients(weights, cache, dhs)
            perm, inverse = order
            return kernels.state_gradients(weights, cache, dhs[:, perm])[:, inverse]

    def warm_up(self, plan):
        """Compile (or load from the on-disk cache) what the plan needs before its first epoch
        and only that: the compiled forward pass evaluation uses, and the layer kernels only
        when the fused epoch does not cover the plan (the core then trains through them). The
        fused epoch compiles as the core asks for it (``epoch_runner``); a later use of the
        layer kernels (the diagnostics, say) compiles them then, once per machine."""
        m, dtype = plan.model, np.dtype(plan.model.dtype)
        if plan.uncovered(self.epoch_features):
            warm_up_layers(m.cell, dtype, m.nonlinearity)
        if m.cell in forward.CELLS:
            with compiling(f"the forward pass for evaluation ({dtype})"):
                forward.warm_up(m)

    def epoch_runner(self, plan):
        """The fused epoch runner (its kernels compile as it is built), or None when the plan
        uses a feature it does not declare (the core checks that too, before asking)."""
        if plan.uncovered(self.epoch_features):
            return None
        return epoch.EpochRunner(plan)

    def forward_runner(self, model_cfg):
        """The compiled forward pass of the whole model (forward.py), for evaluation; the core
        asks only for a model whose features ``forward_features`` holds."""
        if model_cfg.cell not in forward.CELLS:
            return None
        return forward.ForwardRunner(model_cfg)


def warm_up_layers(cell: str, dtype: np.dtype, nonlinearity: str | None) -> None:
    """Run the cell's layer kernels once on a tiny problem so they compile before training
    (``nonlinearity``: the model's; one the cell does not accept gives its default)."""
    backend, spec = NumbaBackend(), cell_spec(cell)
    if nonlinearity not in spec.nonlinearities:
        nonlinearity = spec.default_nonlinearity
    w = {key: np.ones(shape, dtype) for key, shape in spec.layer_shapes(1, 2).items()}
    x = np.ones((2, 1, 1), dtype)
    state0 = spec.zero_state(1, 2, dtype)
    hs, _, cache = backend.layer_forward(cell, w, x, state0, nonlinearity=nonlinearity)
    backend.layer_backward(cell, w, cache, np.ones_like(hs))
