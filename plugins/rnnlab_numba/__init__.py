"""rnnlab's jitted backend: the NumPy reference's equations as @njit loops, and a whole training
epoch (batches, loss, clipping, optimizer step) in one compiled call.

Numba is imported only when the backend is loaded, so listing plugins stays fast.
"""

import importlib.util

from rnnlab.plugin import BackendSpec, hookimpl

__version__ = "0.1.0"


def _unavailable() -> str | None:
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed (pip install numba)"
    return None


def _load():
    from .backend import NumbaBackend

    return NumbaBackend()


@hookimpl
def register_backends():
    return [
        BackendSpec(
            "numba", _load, "jitted loops (numba), whole epoch in one compiled call", _unavailable
        )
    ]
