"""The BLAS threads a run uses: as many as its backend asks for its plan
(``Backend.blas_threads``), set with threadpoolctl for the run and put back when it ends, and
described for the run's summary.

NumPy's BLAS (OpenBLAS in NumPy's wheels) starts one thread per core. For the small matrix
products of typical recurrent networks a second thread gains little on an idle machine and
costs many times over on a busy one, so the NumPy backend asks for one unless its products are
large (see its ``threads`` module). The limit is process-wide while it holds: code running in
other threads of the process during a run sees it too, and runs started at the same time from
several threads of one process should ask for the same number (their limits are put back in the
order they end).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController


def describe(controller: ThreadpoolController, chosen: str) -> dict:
    """``{"library": "openblas 0.3.31", "threads": 1, "chosen": ...}`` for the BLAS libraries
    loaded now (several joined by commas, ``threads`` then the largest count); library None
    and threads 0 when no BLAS is loaded."""
    pools = controller.select(user_api="blas").lib_controllers
    names = [f"{p.internal_api} {p.version}" if p.version else p.internal_api for p in pools]
    return {
        "library": ", ".join(names) if names else None,
        "threads": max((p.num_threads for p in pools), default=0),
        "chosen": chosen,
    }


@contextmanager
def blas_threads(backend, plan) -> Iterator[dict]:
    """Hold the BLAS thread count ``backend.blas_threads(plan)`` asks for (None: leave it as
    the environment set it) until the block ends, then put the previous counts back; yields
    what was used (:func:`describe`), as the run's summary records it under ``"blas"``."""
    ask = getattr(backend, "blas_threads", None)
    wanted = ask(plan) if ask is not None else None
    controller = ThreadpoolController()
    if wanted is None:
        yield describe(controller, "as the environment sets it (the backend asks for none)")
        return
    asked = getattr(plan.train, "threads", 0)
    chosen = f"train.threads = {asked}" if asked else "automatic (by the products' size)"
    with controller.limit(limits=wanted, user_api="blas"):
        yield describe(controller, chosen)
