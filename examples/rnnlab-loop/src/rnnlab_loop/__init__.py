"""rnnlab backend plugin `loop`: the Elman RNN one time step at a time, written to be read.

    h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   f = tanh or relu

Forward keeps every h_t; backward walks the steps in reverse (BPTT) and adds up each step's
share of the weight gradients.
"""

import numpy as np

from rnnlab.plugin import Backend, BackendSpec, hookimpl

__version__ = "0.1.0"


class LoopBackend(Backend):
    name = "loop"
    cells = ("rnn",)
    dtypes = ("float64", "float32")

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh"):
        w = weights
        (h,) = state0
        hs = []
        for x_t in x:
            z = x_t @ w["weight_ih"].T + w["bias_ih"] + h @ w["weight_hh"].T + w["bias_hh"]
            h = np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)
            hs.append(h)
        hs = np.stack(hs)
        return hs, (h,), (x, hs, state0[0], nonlinearity)

    def layer_backward(self, cell, weights, cache, dhs):
        w = weights
        x, hs, h0, nonlinearity = cache
        grads = {key: np.zeros_like(value) for key, value in w.items()}
        dx = np.zeros_like(x)
        dh_next = np.zeros_like(h0)  # gradient reaching h_t from step t+1
        for t in reversed(range(len(x))):
            h_prev = hs[t - 1] if t > 0 else h0
            dh = dhs[t] + dh_next
            # dz = dh * f'(z):  tanh' = 1 - h^2,  relu' = [h > 0]
            dz = dh * (1 - hs[t] ** 2 if nonlinearity == "tanh" else hs[t] > 0)
            grads["weight_ih"] += dz.T @ x[t]
            grads["weight_hh"] += dz.T @ h_prev
            grads["bias_ih"] += dz.sum(axis=0)
            grads["bias_hh"] += dz.sum(axis=0)
            dx[t] = dz @ w["weight_ih"]
            dh_next = dz @ w["weight_hh"]
        return grads, dx


@hookimpl
def register_backends():
    return [BackendSpec("loop", LoopBackend, "one step at a time, for reading")]
