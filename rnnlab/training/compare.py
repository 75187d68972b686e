"""Comparing backends: the same experiment and seed on each backend, repeats interleaved
(a b a b ...) so that a noisy machine slows every backend alike, then timings side by side and
how far each backend's results are from the first one's.

Timing covers the training epochs only (``seconds`` of each epoch record); the backend's warm-up
(compiling kernels, for a jitted backend) is reported apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError, PluginError
from ..experiment.schema import Experiment
from .run import ActiveRun, Callbacks
from .session import prepare

# Largest relative difference from the first backend that still counts as agreement, by dtype:
# float64 differs only by summation order; float32 rounding grows over a run of training.
TOLERANCE = {"float64": 1e-9, "float32": 1e-2}


@dataclass
class Trial:
    """One training run: history, final metrics, final parameters and timing."""

    backend: str
    history: list[dict]
    metrics: dict[str, dict[str, float]]
    params: dict[str, np.ndarray]
    warmup_seconds: float
    train_size: int


def with_backend(exp: Experiment, backend: str, epochs: int | None = None) -> Experiment:
    """The same experiment on another backend (and optionally for another number of epochs)."""
    train = replace(exp.train, backend=backend, epochs=epochs or exp.train.epochs)
    return replace(exp, train=train)


def train_once(exp: Experiment, registry, on_status: Callable[[str], None] | None = None) -> Trial:
    """Prepare ``exp``, then train and evaluate it by the runner's one path without a run
    directory: no checkpoints, metrics files or figures, which nothing here would read and
    whose writing would load the machine while epochs are being timed."""
    session = prepare(exp, registry)
    run = ActiveRun(session, registry, callbacks=Callbacks(status=on_status))
    history = run.results()
    return Trial(
        exp.train.backend,
        history,
        run.summary["metrics"],
        {k: v.copy() for k, v in session.model.params.items()},
        run.info.warmup_seconds,
        len(session.dataset.splits["train"]),
    )


def _relative(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def differences(ref: Trial, other: Trial) -> dict[str, float]:
    """Largest relative differences of ``other`` from ``ref``: per-epoch losses (train and
    validation), final metrics (every split), final parameters (each tensor as a whole)."""
    if len(ref.history) != len(other.history):
        return {"losses": float("inf"), "metrics": float("inf"), "params": float("inf")}
    losses = max(
        (
            _relative(a[k], b[k])
            for a, b in zip(ref.history, other.history, strict=True)
            for k in ("loss", "val_loss")
        ),
        default=0.0,
    )
    metrics = max(
        (
            _relative(v, other.metrics[s].get(k, np.inf))
            for s, ms in ref.metrics.items()
            for k, v in ms.items()
        ),
        default=0.0,
    )
    params = 0.0
    for name, p in ref.params.items():
        q = other.params[name]
        scale = max(np.linalg.norm(p), np.linalg.norm(q))
        err = float(np.linalg.norm(p.astype(np.float64) - q) / scale) if scale > 0 else 0.0
        params = max(params, err)
    return {"losses": losses, "metrics": metrics, "params": params}


def resolve_backends(
    exp: Experiment, registry, names: list[str] | None, source: str | None = None
) -> list[str]:
    """The backends to compare: ``names`` (from the command line), else the ``[compare]`` table,
    else every available backend with the experiment's own first. Each must exist and be
    available here."""
    where = source or str(exp.source or "<experiment>")
    table, key = ("", "") if source else ("compare", "backends")
    if not names:
        names = list(exp.compare.backends)
    if not names:
        names = [exp.train.backend] + sorted(
            n
            for n, spec in registry.backends.items()
            if n != exp.train.backend and not spec.unavailable()
        )
        where, table, key = str(exp.source or "<experiment>"), "train", "backend"
    if len(set(names)) != len(names):
        raise ConfigError(
            f"a backend is named twice: {', '.join(names)}", source=where, table=table, key=key
        )
    for name in names:
        try:
            spec = registry.backend(name)
        except PluginError as exc:
            raise ConfigError(str(exc), source=where, table=table, key=key) from None
        reason = spec.unavailable()
        if reason:
            raise ConfigError(
                f"backend {name!r} is unavailable here: {reason}",
                source=where,
                table=table,
                key=key,
            )
    return names


def compare(
    exp: Experiment,
    registry,
    backends: list[str],
    *,
    repeats: int,
    epochs: int | None = None,
    rtol: float | None = None,
    on_trial: Callable[[int, Trial], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> dict:
    """Run ``exp`` on every backend ``repeats`` times, interleaved; return a JSON-ready report.

    Each row: backend, warm-up seconds (its first run in this process: compiling or loading
    cached kernels), seconds per epoch over every epoch of every repeat (median, min, max),
    training samples per second at the median, speed-up against the first backend, final test
    metrics, and the largest relative differences from the first backend; ``agrees`` says
    whether they are within ``rtol`` (default: :data:`TOLERANCE` for the dtype).
    """
    rtol = rtol if rtol is not None else TOLERANCE[exp.model.dtype]
    trials: dict[str, list[Trial]] = {name: [] for name in backends}
    for repeat in range(repeats):
        for name in backends:
            trial = train_once(
                with_backend(exp, name, epochs),
                registry,
                on_status=on_status if repeat == 0 else None,
            )
            trials[name].append(trial)
            if on_trial is not None:
                on_trial(repeat, trial)
    first = trials[backends[0]]
    base = float(np.median([r["seconds"] for t in first for r in t.history]))
    rows = []
    for name in backends:
        seconds = np.array([r["seconds"] for t in trials[name] for r in t.history])
        median = float(np.median(seconds))
        last = trials[name][-1]
        diffs = differences(first[-1], last)
        # every repeat of one backend must give the same numbers (same seed, same config)
        repeat_diff = max(
            (max(differences(trials[name][0], t).values()) for t in trials[name][1:]), default=0.0
        )
        rows.append(
            {
                "backend": name,
                "warmup_seconds": trials[name][0].warmup_seconds,
                "seconds_per_epoch": {
                    "median": median,
                    "min": float(seconds.min()),
                    "max": float(seconds.max()),
                },
                "samples_per_second": last.train_size / median if median > 0 else None,
                "speedup": base / median if median > 0 else None,
                "test": last.metrics["test"],
                "max_difference": diffs,
                "repeat_difference": repeat_diff,
                "agrees": max(diffs.values()) <= rtol and repeat_diff == 0.0,
            }
        )
    return {
        "experiment": exp.experiment.name,
        "dtype": exp.model.dtype,
        "epochs": epochs or exp.train.epochs,
        "repeats": repeats,
        "rtol": rtol,
        "rows": rows,
        "agree": all(r["agrees"] for r in rows),
    }
