"""One experiment from start to finish: prepare, train, evaluate, and record in a run directory."""

from __future__ import annotations

import platform
import subprocess
import time
from contextlib import nullcontext
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from .config import Experiment
from .plots import run_figures
from .runs import RunDir
from .train import RunInfo, evaluate, fit, prepare


def versions(registry) -> dict[str, str]:
    """Versions of Python, the base libraries and every loaded plugin."""
    out = {"python": platform.python_version()}
    for dist in ("rnnlab", "numpy", "numba", "pluggy", "rich"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    for info in registry.plugins.values():
        if info.status == "ok":
            out[f"plugin:{info.name}"] = info.version
    return out


def git_commit(folder: Path) -> str | None:
    """The commit checked out in the repository holding ``folder``, if any."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_experiment(exp: Experiment, registry, *, out_root: Path, progress=None, status=None):
    """Train and evaluate ``exp``; return ``(summary, run_dir)``.

    ``progress(epochs)`` returns a context manager yielding a per-epoch callback (the terminal
    display); ``status(message)`` shows one-off messages such as the backend's warm-up.
    Everything is validated and built before the run directory is created.
    """
    session = prepare(exp, registry)
    run_dir = RunDir.create(out_root, exp.experiment.name)
    run_dir.write_config(exp.to_dict())
    info = RunInfo(exp, session.dataset, session.model, run_dir.path)
    summary = {
        "status": "running",
        "experiment": exp.experiment.name,
        "task": exp.task.name,
        "backend": exp.train.backend,
        "cell": exp.model.cell,
        "seed": exp.experiment.seed,
        "source": str(exp.source) if exp.source else None,
        "versions": versions(registry),
        "git_commit": git_commit(exp.base_dir),
        "dataset": {"sizes": {k: len(v) for k, v in session.dataset.splits.items()},
                    **session.dataset.saved},
    }
    run_dir.write_summary(summary)

    def on_epoch(record, show):
        run_dir.append_metrics(record)
        show(record)

    t0 = time.perf_counter()
    try:
        with (progress(exp.train.epochs) if progress else nullcontext(lambda r: None)) as show:
            history = fit(session, registry, info, on_epoch=lambda r: on_epoch(r, show),
                          on_status=status)
        summary["status"] = "stopped" if info.stop_reason else "finished"
        if info.stop_reason:
            summary["stop_reason"] = info.stop_reason
        seconds = [r["seconds"] for r in history]
        summary.update(
            epochs_run=len(history),
            warmup_seconds=info.warmup_seconds,
            best_epoch=history[-1]["best_epoch"] if history else None,
            seconds_per_epoch=float(np.median(seconds)) if seconds else None,
            samples_per_second=(len(session.dataset.splits["train"]) * len(seconds)
                                / sum(seconds)) if seconds and sum(seconds) > 0 else None,
            metrics=evaluate(session),
        )
        demo = session.task.demo(session.model, session.dataset, session.rngs["demo"])
        if demo is not None:
            summary["demo"] = demo.to_json()
        summary["figures"] = run_figures(run_dir.path, session.task, session.model,
                                         session.dataset, history)
    except BaseException as exc:
        summary["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        summary["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary["wall_seconds"] = time.perf_counter() - t0
        run_dir.save_params(session.model.params)
        run_dir.write_summary(summary)
    registry.call("on_run_end", run=info, summary=summary)
    return summary, run_dir
