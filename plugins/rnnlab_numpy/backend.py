"""The NumPy reference backend. Every other backend is tested against this one."""

from rnnlab.plugin import Backend

from . import gru, lstm, rnn


class NumpyBackend(Backend):
    name = "numpy"
    cells = ("rnn", "lstm", "gru")
    dtypes = ("float64", "float32")
    features = frozenset({"lengths"})
    _kernels = {"rnn": rnn, "lstm": lstm, "gru": gru}

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh", lengths=None):
        return self._kernels[cell].forward(weights, x, state0, nonlinearity, lengths)

    def layer_backward(self, cell, weights, cache, dhs):
        return self._kernels[cell].backward(weights, cache, dhs)
