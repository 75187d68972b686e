"""Comparing backends: the same experiment and seed on each backend, repeats interleaved
(a b a b ...) so that a noisy machine slows every backend alike, then timings side by side and
how far each backend's results are from the first one's.

Timing covers the training epochs only (``seconds`` of each epoch record); the backend's warm-up
(compiling kernels, for a jitted backend) is reported apart.

Agreement is judged against what rounding alone explains. Backends round differently (another
summation order, fused multiply-adds), and some trainings amplify such differences epoch after
epoch until two correct runs part completely. So the first backend is also run once with its
learning rate moved by one unit in the last place (ulp) of the dtype: how far that run drifts
from the plain one, epoch by epoch, is the experiment's own sensitivity to rounding. A backend
differs beyond agreement only when its difference exceeds the dtype's tolerance and
:data:`ROUNDING_FACTOR` times that drift.
"""

from __future__ import annotations

import math
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
# How many times the drift caused by a one-ulp change of the learning rate a backend's difference
# may reach: another backend's rounding enters at every operation, not once per step, and moved
# correct kernels by up to ~15x that drift in the cases measured.
ROUNDING_FACTOR = 1000.0
# An allowed relative difference this large accepts any result: nothing is checked there.
BLIND = 1.0


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
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def epoch_differences(ref: Trial, other: Trial) -> list[float]:
    """Per epoch, the larger relative difference of the train and validation losses."""
    return [
        max(_relative(a[k], b[k]) for k in ("loss", "val_loss"))
        for a, b in zip(ref.history, other.history, strict=True)
    ]


def _ratio(difference: float, allowed: float) -> float:
    if difference == 0.0:
        return 0.0
    if not math.isfinite(difference) or allowed <= 0:  # NaN in one run only counts as far off
        return float("inf")
    return difference / allowed


def differences(ref: Trial, other: Trial) -> dict[str, float]:
    """Largest relative differences of ``other`` from ``ref``: per-epoch losses (train and
    validation), final metrics (every split), final parameters (each tensor as a whole)."""
    if len(ref.history) != len(other.history):
        return {"losses": float("inf"), "metrics": float("inf"), "params": float("inf")}
    losses = max(epoch_differences(ref, other), default=0.0)
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
        if np.array_equal(p, q, equal_nan=True):
            continue
        err = float(np.linalg.norm(p.astype(np.float64) - q) / scale) if scale > 0 else 0.0
        err = err if math.isfinite(err) else math.inf
        params = max(params, err)
    return {"losses": losses, "metrics": metrics, "params": params}


def nudged(exp: Experiment) -> Experiment:
    """The same experiment with its learning rate one ulp larger in the model's dtype."""
    dtype = np.dtype(exp.model.dtype)
    lr = dtype.type(exp.train.learning_rate)
    return replace(
        exp, train=replace(exp.train, learning_rate=float(np.nextafter(lr, dtype.type(np.inf))))
    )


@dataclass
class Tolerance:
    """What counts as agreement with a reference run: the largest relative difference allowed
    for each epoch's losses, the final metrics and the final parameters; ``drift`` is how far
    the run with a one-ulp change of the learning rate moved from the reference (losses: the
    largest so far at each epoch)."""

    rtol: float
    drift: dict[str, float | list[float]]
    losses: list[float]
    metrics: float
    params: float

    @classmethod
    def measure(cls, ref: Trial, probe: Trial, rtol: float) -> Tolerance:
        """The tolerance ``probe`` (the reference rerun with :func:`nudged`) shows."""
        drift = differences(ref, probe)
        losses = np.maximum.accumulate(epoch_differences(ref, probe) or [0.0]).tolist()
        return cls(
            rtol,
            {"losses": losses, "metrics": drift["metrics"], "params": drift["params"]},
            [max(rtol, ROUNDING_FACTOR * d) for d in losses],
            max(rtol, ROUNDING_FACTOR * drift["metrics"]),
            max(rtol, ROUNDING_FACTOR * drift["params"]),
        )

    def excess(self, ref: Trial, other: Trial) -> float:
        """The largest ratio of a difference of ``other`` from ``ref`` to what is allowed there:
        at most 1 when ``other`` agrees."""
        if len(ref.history) != len(other.history):
            return float("inf")
        diffs = differences(ref, other)
        pairs = list(zip(epoch_differences(ref, other), self.losses, strict=True))
        pairs += [(diffs["metrics"], self.metrics), (diffs["params"], self.params)]
        return max((_ratio(d, a) for d, a in pairs), default=0.0)

    @property
    def sensitive(self) -> bool:
        """Whether rounding alone moves the results beyond the dtype's tolerance (divided by
        the factor): the training amplifies rounding."""
        return max(self.losses + [self.metrics, self.params]) > self.rtol

    @property
    def sharp_epochs(self) -> int:
        """How many first epochs are checked to the dtype's tolerance itself."""
        return next((i for i, a in enumerate(self.losses) if a > self.rtol), len(self.losses))

    @property
    def checked_epochs(self) -> int:
        """How many first epochs allow less than :data:`BLIND`: where a wrong result can show."""
        return next((i for i, a in enumerate(self.losses) if a >= BLIND), len(self.losses))

    def to_dict(self) -> dict:
        return {
            "rounding_factor": ROUNDING_FACTOR,
            "drift": self.drift,
            "allowed": {"losses": self.losses, "metrics": self.metrics, "params": self.params},
            "sensitive": self.sensitive,
            "sharp_epochs": self.sharp_epochs,
            "checked_epochs": self.checked_epochs,
        }

    def note(self, reference: str, dtype: str) -> str | None:
        """A few sentences on the sensitivity when the training amplifies rounding."""
        if not self.sensitive:
            return None
        drift = self.drift["losses"]
        worst = max(drift[-1] if drift else 0.0, self.drift["params"])
        text = (
            f"this training amplifies rounding: {reference} with its learning rate changed by "
            f"one ulp ends {worst:.1e} (relative) from the plain run, so differences up to "
            f"{ROUNDING_FACTOR:g}x that drift, epoch by epoch, are what rounding explains and "
            f"count as agreement."
        )
        checked, sharp = self.checked_epochs, self.sharp_epochs
        if checked == 0 and self.params >= BLIND:
            return text + (
                f" Rounding moves the losses by {drift[0]:.1e} already in the first epoch: no "
                "difference here can show a wrong backend. Compare with a smaller learning "
                "rate or a shorter first epoch (fewer or shorter sequences)."
            )
        if sharp > 0:
            text += (
                f" The first {sharp} epoch(s) are checked to the {dtype} tolerance "
                f"{self.rtol:g}; for the sharpest check compare with --epochs {sharp}."
            )
        elif checked < len(self.losses):
            text += f" Only the first {checked} epoch(s) can show a wrong backend."
        return text


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
    metrics, the largest relative differences from the first backend, and ``excess``, the
    largest ratio of a difference to what is allowed (:class:`Tolerance`: ``rtol``, default
    :data:`TOLERANCE` for the dtype, or what rounding explains); ``agrees`` says whether it is
    at most 1 and every repeat gave the same numbers.
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
    if on_status is not None:
        on_status(
            f"measuring the sensitivity to rounding: {backends[0]} with the learning rate "
            "one ulp larger"
        )
    tolerance = Tolerance.measure(
        first[-1], train_once(nudged(with_backend(exp, backends[0], epochs)), registry), rtol
    )
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
                "excess": (excess := tolerance.excess(first[-1], last)),
                "agrees": excess <= 1.0 and repeat_diff == 0.0,
            }
        )
    return {
        "experiment": exp.experiment.name,
        "dtype": exp.model.dtype,
        "epochs": epochs or exp.train.epochs,
        "repeats": repeats,
        "rtol": rtol,
        "tolerance": tolerance.to_dict(),
        "note": tolerance.note(backends[0], exp.model.dtype),
        "rows": rows,
        "agree": all(r["agrees"] for r in rows),
    }
