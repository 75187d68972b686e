"""Checks a plugin author runs from their own pytest suite; the built-in plugins use them too.

    from rnnlab.testing import check_backend
    def test_my_backend():
        check_backend(MyBackend())

Each check raises AssertionError with a message saying what disagreed and by how much.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .config import ModelConfig
from .model import Model, Shape, init_params
from .plugins import Registry

REFERENCE = "numpy"  # the reference backend every other backend is checked against
CASES = (("mse", "last"), ("xent", "every"))  # loss kinds x where targets apply


def reference_backend():
    """The NumPy reference backend, found through the plugin registry like any backend."""
    return Registry().backend(REFERENCE).load()


def problem(cfg: ModelConfig, loss: str, target: str, *, T=5, N=3, I=3, O=2, seed=0):
    """Small random parameters, inputs and targets for one configuration."""
    rng = np.random.default_rng(seed)
    params = init_params(cfg, Shape(I, O), rng)
    x = rng.normal(size=(T, N, I)).astype(cfg.dtype)
    lead = (N,) if target == "last" else (T, N)
    y = (rng.normal(size=(*lead, O)).astype(cfg.dtype) if loss == "mse"
         else rng.integers(0, O, size=lead))
    return params, x, y


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||), over a whole tensor (0 when both are 0)."""
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def gradient_errors(backend, cfg: ModelConfig, loss: str, target: str, *, eps=1e-5,
                    seed=0) -> dict[str, float]:
    """Relative error of every parameter's analytic gradient against central differences."""
    cfg = replace(cfg, dtype="float64")
    params, x, y = problem(cfg, loss, target, seed=seed)
    model = Model(cfg, backend, params)
    _, grads, _ = model.loss_and_grads(x, y, loss, target)
    errors = {}
    for name, p in params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + eps
            plus = model.loss(x, y, loss, target)
            p[i] = keep - eps
            minus = model.loss(x, y, loss, target)
            p[i] = keep
            numeric[i] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(grads[name], numeric)
    return errors


def configs(backend, *, layers=(1, 2)):
    """Every configuration a backend declares: cell x nonlinearity (rnn) x layer count."""
    for cell in backend.cells:
        for nonlinearity in (("tanh", "relu") if cell == "rnn" else ("tanh",)):
            for n in layers:
                yield ModelConfig(cell=cell, hidden_size=4, layers=n, nonlinearity=nonlinearity)


def check_gradients(backend, *, rtol=1e-7) -> None:
    """Analytic gradients match float64 central differences for every declared configuration."""
    for cfg in configs(backend):
        for loss, target in CASES:
            errors = gradient_errors(backend, cfg, loss, target)
            bad = {k: v for k, v in errors.items() if v > rtol}
            assert not bad, (f"{backend.name}: gradients disagree with finite differences for "
                             f"{cfg} {loss}/{target}: {bad} (tolerance {rtol})")


def check_agreement(backend, reference=None, *, rtol64=1e-9, rtol32=1e-4) -> None:
    """Outputs, final states and gradients match the reference backend for every declared
    cell, layer count and dtype (float32 within ``rtol32``)."""
    reference = reference if reference is not None else reference_backend()
    for cfg in configs(backend):
        for dtype in backend.dtypes:
            rtol = rtol64 if dtype == "float64" else rtol32
            for loss, target in CASES:
                c = replace(cfg, dtype=dtype)
                params, x, y = problem(c, loss, target, T=7, N=4)
                got = Model(c, backend, {k: v.copy() for k, v in params.items()})
                want = Model(c, reference, params)
                (l1, g1, s1), (l2, g2, s2) = (m.loss_and_grads(x, y, loss, target)
                                              for m in (got, want))
                pairs = {"loss": (np.array(l1), np.array(l2)),
                         **{f"grad {k}": (g1[k], g2[k]) for k in g2},
                         **{f"final state {i}": (np.stack(a), np.stack(b))
                            for i, (a, b) in enumerate(zip(s1, s2, strict=True))}}
                for what, (a, b) in pairs.items():
                    assert a.dtype == b.dtype, f"{backend.name}: {what} has dtype {a.dtype}"
                    err = relative_error(a, b)
                    assert err <= rtol, (f"{backend.name} vs {reference.name}: {what} differs by "
                                         f"{err:.2e} relative for {c} {loss}/{target} "
                                         f"(tolerance {rtol})")


def check_backend(backend, reference=None) -> None:
    """Everything a backend must satisfy: exact gradients and agreement with the reference."""
    check_gradients(backend)
    check_agreement(backend, reference)
