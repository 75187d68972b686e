"""The numba backend: the reference's layer contract over jitted row kernels, plus a fused
epoch runner (see epoch.py) for the plans it supports."""

from __future__ import annotations

import numpy as np

from rnnlab.specs import Backend

from . import epoch, rnn


def _rows(a: np.ndarray) -> np.ndarray:
    """Time-major [T, N, F] -> row-major [N, T, F], contiguous (each sequence one block)."""
    return np.ascontiguousarray(np.swapaxes(a, 0, 1))


class NumbaBackend(Backend):
    name = "numba"
    cells = ("rnn",)
    dtypes = ("float64", "float32")

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh"):
        (h0,) = state0
        relu = nonlinearity == "relu"
        xr = _rows(x)
        hs = rnn.layer_forward(weights["weight_ih"], weights["weight_hh"], weights["bias_ih"],
                               weights["bias_hh"], xr, np.ascontiguousarray(h0), relu)
        hs_tm = np.swapaxes(hs, 0, 1)
        return hs_tm, (hs_tm[-1].copy(),), (xr, hs, h0, relu)

    def layer_backward(self, cell, weights, cache, dhs):
        xr, hs, h0, relu = cache
        gWih, gWhh, gb, dx = rnn.layer_backward(weights["weight_ih"], weights["weight_hh"], xr,
                                                hs, np.ascontiguousarray(h0), relu, _rows(dhs))
        grads = {"weight_ih": gWih, "weight_hh": gWhh, "bias_ih": gb, "bias_hh": gb.copy()}
        return grads, np.swapaxes(dx, 0, 1)

    def epoch_runner(self, plan):
        """Compile (or load from the on-disk cache) the kernels this plan needs, then return the
        fused epoch runner, or None when the plan is outside what it supports."""
        dtype = np.dtype(plan.model.dtype)
        warm_up_layers(dtype, plan.model.nonlinearity == "relu")
        if not epoch.supports(plan):
            return None
        return epoch.EpochRunner(plan)


def warm_up_layers(dtype: np.dtype, relu: bool) -> None:
    """Run the layer kernels once on a tiny problem so they compile before training."""
    backend = NumbaBackend()
    w = {"weight_ih": np.ones((2, 1), dtype), "weight_hh": np.ones((2, 2), dtype),
         "bias_ih": np.ones(2, dtype), "bias_hh": np.ones(2, dtype)}
    x = np.ones((2, 1, 1), dtype)
    hs, _, cache = backend.layer_forward("rnn", w, x, (np.zeros((1, 2), dtype),),
                                         nonlinearity="relu" if relu else "tanh")
    backend.layer_backward("rnn", w, cache, np.ones_like(hs))
