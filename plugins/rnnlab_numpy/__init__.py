"""rnnlab's reference backend: vectorised NumPy, exact backpropagation through time."""

from rnnlab.plugin import BackendSpec, hookimpl

__version__ = "0.1.0"


def _load():
    from .backend import NumpyBackend

    return NumpyBackend()


@hookimpl
def register_backends():
    return [BackendSpec("numpy", _load, "reference: vectorised NumPy, full BPTT")]
