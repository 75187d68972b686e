"""One run in flight, from start to end: :class:`ActiveRun` holds everything that describes it
(the session, the plugin registry, what hooks see of it, its directory, its summary, its
checkpoints and the display's callbacks) and its methods are the lifecycle's steps: start,
train, evaluate, record, then end; or interrupted, diverged or failed. :func:`run_experiment`
and :func:`resume_experiment` walk them for a new run and for one continued from its checkpoint.
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from ..display.diagnostic_figures import run_diagnostic_figures
from ..display.figures import run_figures
from ..errors import RnnlabError, RunInterrupted, TrainingDiverged
from ..experiment.load import recorded_experiment
from ..experiment.schema import Experiment
from ..registry import failures
from ..registry import state as pluginstate
from ..registry.progress import listening
from ..store.checkpoint import Checkpoint, TrainState, data_digest
from ..store.liveness import resumable_summary
from ..store.lock import RunLock
from ..store.rundir import RunDir, RunWriteError
from .blas import blas_threads
from .checkpoints import RunCheckpoints, check_resumable, check_same_experiment, restore
from .diagnostics import Diagnostics
from .interrupt import graceful_stop
from .loop import RunInfo, evaluate, fit
from .machine import load_average
from .session import Session, prepare


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
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass(frozen=True)
class Callbacks:
    """How a run shows itself: ``progress(epochs)`` returns a context manager yielding a
    per-epoch callback (the terminal display); ``status(message)`` shows one-off messages such
    as the backend's warm-up. Either may be None (nothing shown)."""

    progress: Callable | None = None
    status: Callable[[str], None] | None = None


def run_experiment(
    exp: Experiment,
    registry,
    *,
    out_root: Path,
    progress=None,
    status=None,
    run_name: str | None = None,
):
    """Train and evaluate ``exp``; return ``(summary, run_dir)``.

    Everything is validated and built before the run directory is created. Ctrl-C or
    SIGTERM stops training at the end of a batch with a checkpoint and raises RunInterrupted; a
    NaN or infinite loss raises TrainingDiverged; either way summary.json says why. The run
    directory is ``out_root/<name>-<time>``, or exactly ``out_root/<run_name>`` when given.
    ``progress`` and ``status`` are the display's (:class:`Callbacks`).
    """
    session = prepare(exp, registry)
    if run_name is None:
        run_dir = RunDir.create(out_root, exp.experiment.name)
    else:
        run_dir = RunDir.create(out_root, run_name, exact=True)
    with RunLock(run_dir.path):  # held until the last byte is written
        run = ActiveRun(session, registry, run_dir, callbacks=Callbacks(progress, status))
        run.start()
        return run.complete()


def resume_experiment(
    run_dir, registry, *, progress=None, experiment: Experiment | None = None, status=None
):
    """Continue an interrupted run from its checkpoint; return ``(summary, run_dir)``.

    The run ends with the parameters and metrics it would have had, bit for bit, had it never
    stopped. ``experiment`` (default: the run's own config.toml) may differ from the recorded one
    only in keys that change when or how long training runs (``train.epochs`` with a constant
    learning rate, ``train.checkpoint_every``, ``train.checkpoint_seconds``, ``train.threads``);
    anything else is a different experiment and is refused, as is a change in the task's data.
    """
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir.open(Path(run_dir))
    with RunLock(run_dir.path):  # before reading: the checkpoint is not being written
        run_dir.remove_leftovers()  # temporary files of a writer that was killed
        ckpt = run_dir.load_checkpoint()
        exp = experiment or recorded_experiment(run_dir, registry)
        config = exp.to_dict()  # once per run: compared, recorded, and kept in every checkpoint
        check_same_experiment(run_dir, ckpt, config)
        summary = resumable_summary(run_dir, exp)
        check_resumable(run_dir, summary, ckpt, exp)
        session = prepare(exp, registry)
        if data_digest(session.dataset.splits) != ckpt.data_digest:
            raise RnnlabError(
                f"{run_dir.path}: the task's data differ from the data the run was "
                f"trained on (a changed data file or task plugin); start a new run"
            )
        run = ActiveRun(
            session,
            registry,
            run_dir,
            summary=summary,
            config=config,
            callbacks=Callbacks(progress, status),
        )
        run.start(ckpt)
        return run.complete()


class ActiveRun:
    """One run in flight: its session and registry, ``info`` (what lifecycle hooks see),
    its run directory (None: a run that writes nothing, as ``rnnlab compare`` trains), its
    summary (filled in as results come, so a failure part way leaves what was done), its
    checkpoints and the display's callbacks.

    The lifecycle, in order: :meth:`start` (a new run, or one resumed from a checkpoint),
    :meth:`train`, :meth:`evaluate`, :meth:`record`, then :meth:`end`; or :meth:`interrupted`,
    :meth:`diverged` or :meth:`failed` when training stops otherwise; :meth:`keep` writes down
    whatever the run has when it stops, however it stops. :meth:`complete` walks them.
    """

    def __init__(
        self,
        session: Session,
        registry,
        run_dir: RunDir | None = None,
        *,
        summary: dict | None = None,
        config: dict | None = None,
        callbacks: Callbacks = Callbacks(),
    ):
        exp = session.experiment
        self.session, self.registry, self.run_dir = session, registry, run_dir
        self.summary = summary if summary is not None else {}
        self.callbacks = callbacks
        path = run_dir.path if run_dir is not None else None
        self.info = RunInfo(exp, session.dataset, session.model, path)
        self.state = TrainState()
        self.show = None  # the display's per-epoch callback, while training
        self.history: list[dict] = []
        self.checkpoints: RunCheckpoints | None = None
        self.config = config  # exp.to_dict(), once per run: config.toml and checkpoints share it

    # -- the lifecycle -------------------------------------------------------------------------
    def start(self, ckpt: Checkpoint | None = None) -> None:
        """Record the run's start: its config.toml and a "running" summary; a resumed run
        (``ckpt``) first gets its parameters, optimizer, generators and metrics back to the
        checkpoint's. Plugins get their own state back before ``on_run_start``."""
        run_dir, session = self.run_dir, self.session
        if self.config is None:
            self.config = session.experiment.to_dict()
        lines: list[bytes] = []
        if ckpt is None:
            run_dir.write_config(self.config)
            self.summary.update(new_summary(session, self.registry))
        else:
            restore(session, ckpt, run_dir)
            self.state = ckpt.state
            run_dir.write_config(self.config)  # records a changed train.epochs or interval
            lines = run_dir.rewrite_metrics(ckpt.state.history)  # drops later epochs
            self.summary.update(status="running", resumed=self.summary.get("resumed", 0) + 1)
            for key in ("error", "stop_reason"):
                self.summary.pop(key, None)
        run_dir.write_summary(self.summary)
        self.checkpoints = RunCheckpoints(
            session, self.registry, self.info, run_dir, self.state, self.config
        )
        for line in lines:
            self.checkpoints.wrote(line)
        self.restore_plugin_state()

    def train(self) -> list[dict]:
        """Fit until ``train.epochs`` are done (or a plugin stops the run); return the history.

        With a run directory each epoch's record is appended to its metrics, Ctrl-C and SIGTERM
        stop training gracefully, and checkpoints are written (every one is on disk before
        this returns or raises). Without one, nothing is written and Ctrl-C is Python's own."""
        exp, progress = self.session.experiment, self.callbacks.progress
        showing = progress(exp.train.epochs) if progress else nullcontext(None)
        stopping = graceful_stop() if self.run_dir is not None else nullcontext(None)
        checkpoints = self.checkpoints
        with showing as show, stopping as stop:
            self.show = show
            try:
                self.history = fit(
                    self.session,
                    self.registry,
                    self.info,
                    on_epoch=self.record_epoch if self.run_dir is not None else None,
                    state=self.state,
                    save=checkpoints.save if checkpoints is not None else None,
                    stop=stop,
                    on_status=self.callbacks.status,
                )
            finally:
                if checkpoints is not None:
                    checkpoints.writer.wait()  # every checkpoint is on disk before any report
        return self.history

    def results(self) -> list[dict]:
        """:meth:`train`, :meth:`evaluate` and, with a run directory, :meth:`record`, under the
        backend's BLAS threads from the first epoch to the results (``summary["blas"]`` says
        what was used); returns the history."""
        backend = f"backend {self.session.experiment.train.backend!r}"
        with (
            blas_threads(self.session.backend, self.session.plan) as used,
            listening(self.callbacks.status, backend),  # what it compiles, as it does
        ):
            self.summary["blas"] = used
            self.train()
            self.announce("evaluating the model on every split ...")
            self.evaluate()
            if self.run_dir is not None:
                self.announce("writing the run's results and figures ...")
                self.record()
        return self.history

    def announce(self, message: str) -> None:
        """A line for the display when a run with a directory starts a long step after training
        (compare, which writes nothing, keeps its output to timings)."""
        if self.run_dir is not None and self.callbacks.status is not None:
            self.callbacks.status(message)

    def record_epoch(self, record: dict) -> None:
        """One epoch done: its record appended to metrics.jsonl, then shown."""
        self.checkpoints.wrote(self.run_dir.append_metrics(record))
        if self.show is not None:
            self.show(record)

    def evaluate(self) -> None:
        """How training ended, the epochs' figures and the task's metrics on every split."""
        session, info, summary = self.session, self.info, self.summary
        summary["status"] = "stopped" if info.stop_reason else "finished"
        if info.stop_reason:
            summary["stop_reason"] = info.stop_reason
        summary.update(
            epoch_figures(self.history, len(session.dataset.splits["train"])),
            warmup_seconds=info.warmup_seconds,
            metrics=evaluate(session),
        )

    def record(self) -> None:
        """What a finished run adds to its summary beyond the metrics: diagnostics at the end,
        the task's demo, and the figures drawn into the run directory."""
        session, summary, path = self.session, self.summary, self.run_dir.path
        exp = session.experiment
        summary["diagnostics"] = Diagnostics(
            exp.diagnostics, session.model, session.dataset, exp.experiment.seed
        ).at_end()
        demo = session.task.demo(session.model, session.dataset, session.rngs["demo"])
        if demo is not None:
            summary["demo"] = demo.to_json()
        summary["figures"] = run_figures(
            path, session.task, session.model, session.dataset, self.history
        )
        summary["diagnostics"]["figures"] = run_diagnostic_figures(
            path, self.history, summary["diagnostics"]
        )

    def end(self) -> None:
        """``on_run_end``; the run's results stand if it fails, and the summary says what
        failed."""
        try:
            self.registry.call("on_run_end", run=self.info, summary=self.summary)
        except Exception as exc:
            failures.write_traceback(self.run_dir.path, exc)
            self.run_dir.write_summary({**self.summary, "status": "failed", "error": str(exc)})
            raise

    def complete(self) -> tuple[dict, RunDir]:
        """Train from the started state, evaluate and write everything down; return
        ``(summary, run_dir)``. However the run ends, summary.json says how, and the
        parameters are kept if they are finite."""
        t0, cpu0 = time.perf_counter(), time.process_time()
        previous_seconds = self.summary.get("wall_seconds", 0.0)
        previous_cpu = self.summary.get("cpu_seconds", 0.0)
        failing = True
        try:
            self.results()
            failing = False
        except RunInterrupted as exc:
            raise self.interrupted(exc) from None
        except TrainingDiverged as exc:
            raise self.diverged(exc) from None
        except BaseException as exc:
            failure = self.failed(exc)
            if failure is not None:
                raise failure from exc
            raise
        finally:
            self.summary["wall_seconds"] = previous_seconds + time.perf_counter() - t0
            self.summary["cpu_seconds"] = previous_cpu + time.process_time() - cpu0
            self.summary["load_average"] = load_average()  # how busy the machine was
            self.keep(failing)
        self.end()
        return self.summary, self.run_dir

    # -- how it stopped ------------------------------------------------------------------------
    def interrupted(self, exc: RunInterrupted) -> RunInterrupted:
        """Ctrl-C or SIGTERM stopped training: the summary says so, the error how to resume."""
        self.summary.update(status="interrupted", stop_reason=str(exc), epochs_run=self.info.epoch)
        done = self.checkpoints.done
        if done is None:
            return RunInterrupted(
                exc.signum,
                f"interrupted: {exc}; no checkpoint was written yet, so the run cannot be resumed",
            )
        return RunInterrupted(
            exc.signum,
            f"interrupted: {exc}; checkpoint saved ({done}"
            f" done). Resume with: rnnlab resume {self.run_dir.path}",
        )

    def diverged(self, exc: TrainingDiverged) -> TrainingDiverged:
        """NaN or infinity: the summary says so, the error where the last good checkpoint is."""
        done = self.checkpoints.done
        kept = (
            f"The last good checkpoint ({done} done) is kept in {self.run_dir.path}"
            if done is not None
            else "No checkpoint was written before it"
        )
        self.summary.update(status="diverged", stop_reason=str(exc), epochs_run=self.info.epoch)
        return TrainingDiverged(f"{exc}. {kept}")

    def failed(self, exc: BaseException):
        """Any other error (or KeyboardInterrupt outside training): the summary and a traceback
        file record it; returns the plugin's error to raise instead, if a plugin caused it."""
        summary, path = self.summary, self.run_dir.path
        summary["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        failure = failures.plugin_error(exc, self.registry, path)
        summary["error"] = str(failure) if failure else f"{type(exc).__name__}: {exc}"
        summary["epochs_run"] = self.info.epoch
        if summary["status"] == "failed":
            failures.write_traceback(path, exc)
        on_disk = self.checkpoints.on_disk
        if isinstance(exc, RunWriteError) and on_disk is not None:
            return RunWriteError(
                exc.path,
                exc.cause,
                f"; the run is marked failed and keeps its checkpoint ({on_disk} done): once "
                f"the file can be written, resume with: rnnlab resume {path}",
            )
        return failure

    def keep(self, failing: bool) -> None:
        """Write down what the run has, however it stops: its parameters when they are finite,
        then its summary. When the run is ``failing`` already, a write that fails here (a full
        disk) does not hide why it failed: the summary still says "failed" if it can."""
        params = self.session.model.params
        try:
            if all(np.all(np.isfinite(p)) for p in params.values()):
                self.run_dir.save_params(params)
        except RunWriteError as exc:
            if failing:
                pass  # the error on its way out says why; the checkpoint is what resumes
            else:
                failures.write_traceback(self.run_dir.path, exc)
                self.summary.update(status="failed", error=str(exc))
                with suppress(RunWriteError):
                    self.run_dir.write_summary(self.summary)
                raise
        try:
            self.run_dir.write_summary(self.summary)
        except RunWriteError:
            if not failing:
                raise

    def restore_plugin_state(self) -> None:
        """A resumed run: plugins get their own state back before ``on_run_start``."""
        if not self.state.plugin_state:
            return
        status = self.callbacks.status
        for name in pluginstate.restore(self.registry, self.info, self.state.plugin_state):
            if status is not None:
                status(
                    f"warning: plugin {name!r} saved a state in the checkpoint but is not "
                    f"loaded now; its state is not restored"
                )


def new_summary(session: Session, registry) -> dict:
    """A new run's first summary: "running", what runs, versions, commit and the data's sizes."""
    exp = session.experiment
    return {
        "status": "running",
        "experiment": exp.experiment.name,
        "task": exp.task.name,
        "backend": exp.train.backend,
        "cell": exp.model.cell,
        "loss": session.dataset.loss,  # what the outputs are (rnnlab.load reads them)
        "target": session.dataset.target,
        "seed": exp.experiment.seed,
        "source": str(exp.source.resolve()) if exp.source else None,
        "plugin_files": registry.file_records(),  # found again by resume, export, rnnlab.load
        "versions": versions(registry),
        "git_commit": git_commit(exp.base_dir),
        "dataset": {
            "sizes": {k: len(v) for k, v in session.dataset.splits.items()},
            **session.dataset.saved,
        },
    }


def epoch_figures(history: list[dict], n_train: int) -> dict:
    """Epochs run, best epoch and speed, from the per-epoch records."""
    seconds = [r["seconds"] for r in history]
    return dict(
        epochs_run=len(history),
        best_epoch=history[-1]["best_epoch"] if history else None,
        seconds_per_epoch=float(np.median(seconds)) if seconds else None,
        samples_per_second=(n_train * len(seconds) / sum(seconds))
        if seconds and sum(seconds) > 0
        else None,
    )
