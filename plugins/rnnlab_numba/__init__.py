"""rnnlab's jitted backend: the NumPy reference's equations as @njit loops, and a whole training
epoch (batches, loss, clipping, optimizer step) in one compiled call.

Numba is imported only when the backend is loaded, so listing plugins stays fast.

The files, in tiers (docs/numba-backend.md maps each step of the reference to them):

- kernels, hardware-level maths: ``simd.py`` (register-blocked multiply-adds as LLVM vector
  code), ``blocks.py`` (every matrix product on them), ``mathfn.py`` (tanh, sigmoid),
  ``softmax.py`` (a cross-entropy row), ``onehot.py`` (one-hot inputs as gathers), ``fpenv.py``
  (subnormals flushed);
- cells, one cell's equations over a block of rows (forward and BPTT of a layer): ``rnn.py``,
  ``lstm.py``, ``gru.py``;
- epoch, the network and the fused loop: ``layout.py`` (the settings, the flat parameter
  layout and the named structures every kernel takes, shared by the two below),
  ``network.py`` (the whole stack, head and loss over a chunk of rows), ``step.py`` (clipping
  and the optimizer step), ``epoch.py`` (the fused epoch), ``forward.py`` (the compiled
  forward pass for evaluation);
- around them: ``backend.py`` (the Backend the core calls), ``lengths.py`` (rows sorted by
  length), ``jitcache.py`` (the kernel cache, keyed on all these sources), ``internals.py``
  (what is taken from numba's and llvmlite's internals, and its check).
"""

import importlib.util

from rnnlab.plugin import BackendSpec, hookimpl

__version__ = "0.1.0"


def _unavailable() -> str | None:
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed (pip install numba)"
    return None


def _load():
    from . import internals

    internals.check()  # an upgrade that changed numba's internals: one clear error, here
    from .backend import NumbaBackend

    return NumbaBackend()


@hookimpl
def register_backends():
    return [
        BackendSpec(
            "numba", _load, "jitted loops (numba), whole epoch in one compiled call", _unavailable
        )
    ]
