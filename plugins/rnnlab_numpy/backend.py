"""The NumPy reference backend. Every other backend is tested against this one.

It runs its own kernels for the built-in cells and, for any other cell, the kernels its spec
carries under ``CellSpec.kernels["numpy"]``: a model built on this backend with such a spec
(``rnnlab.plugin.Model`` calls :meth:`NumpyBackend.runs_cell`) runs it with nothing else.
"""

from rnnlab.plugin import Backend, CellSpec

from . import gru, indrnn, lru, lstm, mingru, minlstm, rnn, threads

KERNELS = {
    "rnn": rnn,
    "lstm": lstm,
    "gru": gru,
    "mingru": mingru,
    "minlstm": minlstm,
    "indrnn": indrnn,
    "lru": lru,
}


class NumpyBackend(Backend):
    name = "numpy"
    dtypes = ("float64", "float32")
    features = frozenset({"lengths"})

    def __init__(self):
        self._kernels = dict(KERNELS)

    @property
    def cells(self) -> tuple[str, ...]:
        """The built-in cells, and every cell whose spec with numpy kernels it was shown."""
        return tuple(self._kernels)

    def runs_cell(self, spec: CellSpec) -> bool:
        """Whether this backend runs ``spec``'s cell: a built-in one, or one whose spec carries
        ``kernels["numpy"]`` (remembered from then on)."""
        if spec.name in KERNELS:
            return True
        kernels = spec.kernels.get(self.name)
        if kernels is None:
            return False
        self._kernels[spec.name] = kernels
        return True

    def blas_threads(self, plan) -> int:
        """One BLAS thread for the small products of typical sizes, more only for large ones
        with a core free; ``train.threads`` when set (see :mod:`rnnlab_numpy.threads`)."""
        return threads.blas_threads(plan)

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh", lengths=None):
        return self._kernels[cell].forward(weights, x, state0, nonlinearity, lengths)

    def layer_backward(self, cell, weights, cache, dhs):
        return self._kernels[cell].backward(weights, cache, dhs)

    def state_gradients(self, cell, weights, cache, dhs):
        """dL/d(state)_t of the layer's first state tensor at every step, ``[T, N, H]`` (complex
        for a complex state), from the gradient ``dhs`` of its outputs; None when the cell's
        kernels do not compute it."""
        kernels = self._kernels[cell]
        if not hasattr(kernels, "state_gradients"):
            return None
        return kernels.state_gradients(weights, cache, dhs)
