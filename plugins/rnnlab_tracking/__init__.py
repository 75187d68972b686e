"""Built-in plugin: a run's curves, config and files in TensorBoard and MLflow.

    [tracking]
    tensorboard = true                   # event files in the run directory (tensorboardX)
    mlflow = "sqlite:///mlflow.db"       # params, metrics and files to that tracking URI

Each tracker is an optional extra (``rnnlab[tensorboard]``, ``rnnlab[mlflow]``), imported only
when a run turns it on. A tracker that cannot start (not installed, URI unreachable) stops the
run in ``on_run_start``, before the first epoch, with one message naming it; one that fails
later is reported once and switched off, and the run goes on (a tracker never costs a run).
Shaped like any third-party plugin: it imports only ``rnnlab.plugin``.
"""

from __future__ import annotations

import sys

from rnnlab.plugin import ConfigError, Option, TableSpec, hookimpl

__version__ = "1.0"

TABLE = "tracking"
OPTIONS = (
    Option(
        "tensorboard",
        bool,
        False,
        "write TensorBoard event files into the run directory (needs rnnlab[tensorboard])",
    ),
    Option(
        "mlflow",
        str,
        "",
        "MLflow tracking URI to log params, metrics and the run's files to, e.g. "
        '"sqlite:///mlflow.db" or "http://host:5000" (needs rnnlab[mlflow]; empty: off)',
    ),
)

_active: dict[int, list] = {}  # id(RunInfo) -> the run's trackers
_restored: dict[int, dict] = {}  # id(RunInfo) -> the state its checkpoint kept (resumed runs)


@hookimpl
def register_tables():
    return [TableSpec(TABLE, OPTIONS, "send curves, config and files to TensorBoard / MLflow")]


def flat_config(config: dict) -> dict[str, object]:
    """``{"model": {"cell": "gru"}}`` -> ``{"model.cell": "gru"}``; lists as text."""
    out = {}
    for table, values in config.items():
        if isinstance(values, dict):
            for key, value in values.items():
                out[f"{table}.{key}"] = (
                    value if isinstance(value, bool | int | float | str) else str(value)
                )
        else:
            out[table] = str(values)
    return out


def final_metrics(summary: dict) -> dict[str, float]:
    """``{"test/mse": 0.01, ...}`` from the summary's metrics (split -> name -> value)."""
    return {
        f"{split}/{name}": float(value)
        for split, values in (summary.get("metrics") or {}).items()
        for name, value in values.items()
        if isinstance(value, int | float)
    }


def trackers_for(run) -> list:
    """The tracker classes the run's ``[tracking]`` table turns on (none without a table)."""
    experiment = getattr(run, "experiment", None)
    settings = getattr(experiment, "tables", {}).get(TABLE, {})
    found = []
    if settings.get("tensorboard"):
        from .tensorboard_tracker import TensorBoardTracker

        found.append(TensorBoardTracker)
    if settings.get("mlflow"):
        from .mlflow_tracker import MlflowTracker

        found.append(MlflowTracker)
    return found


@hookimpl
def on_run_start(run):
    kinds = trackers_for(run)
    resumed = _restored.pop(id(run), {})
    if not kinds or run.run_dir is None:  # off, or training outside the runner
        return
    started = []
    for kind in kinds:
        try:
            started.append(kind(run, resumed))
        except ConfigError:
            close_all(started)
            raise
        except Exception as exc:  # any failure to start is the user's to fix, named once
            close_all(started)
            raise ConfigError(
                f"tracker {kind.name} cannot start: {type(exc).__name__}: {exc}",
                source=str(run.experiment.source or ""),
                table=TABLE,
                key=kind.key,
            ) from None
    _active[id(run)] = started


def close_all(trackers) -> None:
    for tracker in trackers:
        try:
            tracker.close()
        except Exception:
            pass


def each(run, method: str, *args) -> None:
    """Call ``method`` on every tracker of ``run``; one that fails is reported and dropped."""
    trackers = _active.get(id(run), [])
    for tracker in list(trackers):
        try:
            getattr(tracker, method)(*args)
        except Exception as exc:
            trackers.remove(tracker)
            print(
                f"warning: tracker {tracker.name} failed and is switched off for this run "
                f"({type(exc).__name__}: {exc}); the run goes on",
                file=sys.stderr,
            )
            close_all([tracker])


@hookimpl
def checkpoint_state(run):
    """What a resumed run needs to go on where it stopped (MLflow: the same MLflow run)."""
    state = {}
    for tracker in _active.get(id(run), []):
        state.update(tracker.state())
    return state or None


@hookimpl
def restore_state(run, state):
    _restored[id(run)] = dict(state)


@hookimpl
def on_epoch_end(run, epoch, metrics):
    each(run, "epoch", epoch, metrics)


@hookimpl
def on_run_end(run, summary):
    each(run, "end", summary)
    close_all(_active.pop(id(run), []))
