"""One experiment from start to finish: prepare, train, evaluate, and record in a run directory;
and the same for a run continued from its checkpoint."""

from __future__ import annotations

import platform
import subprocess
import threading
import time
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from ..display.diagnostic_figures import run_diagnostic_figures
from ..display.figures import run_figures
from ..errors import RnnlabError, RunInterrupted, TrainingDiverged
from ..experiment.config import Experiment
from ..experiment.load import recorded_experiment
from ..registry import failures
from ..registry import state as pluginstate
from ..store.checkpoint import (
    Checkpoint,
    EpochPosition,
    TrainState,
    config_differences,
    data_digest,
)
from ..store.liveness import resumable_summary
from ..store.lock import RunLock
from ..store.rundir import CHECKPOINT, RunDir
from .blas import holding_blas_threads
from .diagnostics import Diagnostics
from .interrupt import graceful_stop
from .loop import RunInfo, evaluate, fit, prepare


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

    ``progress(epochs)`` returns a context manager yielding a per-epoch callback (the terminal
    display); ``status(message)`` shows one-off messages such as the backend's warm-up.
    Everything is validated and built before the run directory is created. Ctrl-C or
    SIGTERM stops training at the end of a batch with a checkpoint and raises RunInterrupted; a
    NaN or infinite loss raises TrainingDiverged; either way summary.json says why. The run
    directory is ``out_root/<name>-<time>``, or exactly ``out_root/<run_name>`` when given.
    """
    session = prepare(exp, registry)
    if run_name is None:
        run_dir = RunDir.create(out_root, exp.experiment.name)
    else:
        run_dir = RunDir.create(out_root, run_name, exact=True)
    with RunLock(run_dir.path):  # held until the last byte is written
        config = exp.to_dict()  # once per run: config.toml and every checkpoint record it
        run_dir.write_config(config)
        summary = {
            "status": "running",
            "experiment": exp.experiment.name,
            "task": exp.task.name,
            "backend": exp.train.backend,
            "cell": exp.model.cell,
            "loss": session.dataset.loss,  # what the outputs are (rnnlab.load reads them)
            "target": session.dataset.target,
            "seed": exp.experiment.seed,
            "source": str(exp.source.resolve()) if exp.source else None,
            "versions": versions(registry),
            "git_commit": git_commit(exp.base_dir),
            "dataset": {
                "sizes": {k: len(v) for k, v in session.dataset.splits.items()},
                **session.dataset.saved,
            },
        }
        run_dir.write_summary(summary)
        return train_and_record(
            session, registry, run_dir, summary, TrainState(), progress, status, config=config
        )


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
        return _resume(run_dir, registry, progress, experiment, status)


def _resume(run_dir: RunDir, registry, progress, experiment, status):
    ckpt = run_dir.load_checkpoint()
    exp = experiment or recorded_experiment(run_dir, registry)
    config = exp.to_dict()  # once per run: compared, recorded, and kept in every checkpoint
    check_same_experiment(run_dir, ckpt, exp, config=config)
    summary = resumable_summary(run_dir, exp)
    check_resumable(run_dir, summary, ckpt, exp)
    session = prepare(exp, registry)
    if data_digest(session.dataset.splits) != ckpt.data_digest:
        raise RnnlabError(
            f"{run_dir.path}: the task's data differ from the data the run was "
            f"trained on (a changed data file or task plugin); start a new run"
        )
    restore(session, ckpt, run_dir)
    run_dir.write_config(config)  # records a changed train.epochs or checkpoint interval
    run_dir.rewrite_metrics(ckpt.state.history)  # drop epochs done after the checkpoint
    summary.update(status="running", resumed=summary.get("resumed", 0) + 1)
    for key in ("error", "stop_reason"):
        summary.pop(key, None)
    run_dir.write_summary(summary)
    return train_and_record(
        session, registry, run_dir, summary, ckpt.state, progress, status, config=config
    )


def check_same_experiment(
    run_dir: RunDir, ckpt: Checkpoint, exp: Experiment, *, config: dict | None = None
) -> None:
    """``exp`` (whose ``to_dict()`` is ``config`` when given) is the checkpoint's experiment."""
    differences = config_differences(ckpt.config, config if config is not None else exp.to_dict())
    if differences:
        raise RnnlabError(
            f"{run_dir.path}: the experiment differs from the checkpoint's in "
            f"{'; '.join(differences)}. Resuming would continue a different "
            f"experiment; start a new run instead (only train.epochs with a "
            f"constant schedule, train.checkpoint_every, "
            f"train.checkpoint_seconds and train.threads may change)"
        )


def check_resumable(run_dir: RunDir, summary: dict, ckpt: Checkpoint, exp: Experiment) -> None:
    done, wanted = ckpt.state.epoch, exp.train.epochs
    if wanted < done:
        raise RnnlabError(
            f"{run_dir.path}: the checkpoint has {done} epochs done; train.epochs "
            f"= {wanted} would have to undo some"
        )
    status = summary.get("status")
    if status == "stopped":
        raise RnnlabError(
            f"{run_dir.path}: the run was stopped by a plugin "
            f"({summary.get('stop_reason', '')}); it has nothing left to do"
        )
    if status == "finished" and done >= wanted:
        if exp.train.schedule != "constant":  # its rates depend on epochs: cannot extend
            raise RnnlabError(
                f"{run_dir.path}: the run already finished its {done} epochs; its "
                f"{exp.train.schedule} schedule sets every epoch's learning rate from "
                f"train.epochs, so a longer run is a different experiment: start one with "
                f"rnnlab run {run_dir.path / 'config.toml'} --set train.epochs=N"
            )
        raise RnnlabError(
            f"{run_dir.path}: the run already finished its {done} epochs; to "
            f"train longer, resume with --set train.epochs=N (N > {done})"
        )


def restore(session, ckpt: Checkpoint, run_dir: RunDir) -> None:
    """Put the checkpoint's parameters, optimizer state and generator states into ``session``."""
    params, where = session.model.params, run_dir.path / CHECKPOINT
    shapes = {k: v.shape for k, v in params.items()}
    if {k: v.shape for k, v in ckpt.params.items()} != shapes:
        raise RnnlabError(f"{where}: its parameters do not fit the model")
    # a checkpoint from before a stream was added lacks it: that stream never drew then, so
    # it keeps its fresh state (e.g. "dropout", which draws nothing with model.dropout = 0)
    if not set(ckpt.generators) <= set(session.rngs):
        raise RnnlabError(
            f"{where}: it holds generators {sorted(ckpt.generators)}, this rnnlab "
            f"uses {sorted(session.rngs)}"
        )
    for k, v in ckpt.params.items():
        params[k][...] = v
    try:
        session.optimizer.load_state_dict(ckpt.optimizer)
        for name, state in ckpt.generators.items():
            session.rngs[name].bit_generator.state = state
    except (KeyError, ValueError, TypeError) as exc:
        raise RnnlabError(
            f"{where}: its optimizer or generator state does not fit ({type(exc).__name__}: {exc})"
        ) from None


class CheckpointWriter:
    """Writes checkpoints on a background thread, so that training does not wait for the disk
    (the fsync alone takes ~10 ms here, longer than a small epoch). One write at a time; a
    checkpoint submitted while one is being written waits, and is replaced by a newer one if
    that comes first (the file on disk is always a whole, recent checkpoint; intermediate ones
    are skipped when epochs are faster than the disk). ``wait()`` returns when the newest is on
    disk and raises a write's error, if any. A killed process leaves the previous checkpoint
    whole (atomic writes)."""

    def __init__(self, run_dir: RunDir):
        self.run_dir, self.thread, self.error = run_dir, None, None
        self.pending: Checkpoint | None = None
        self.lock = threading.Lock()

    def submit(self, ckpt: Checkpoint) -> None:
        self._raise_error()
        with self.lock:
            self.pending = ckpt
            if self.thread is None:
                self.thread = threading.Thread(target=self._drain, name="rnnlab-checkpoint")
                self.thread.start()

    def _drain(self) -> None:
        while True:
            with self.lock:
                ckpt, self.pending = self.pending, None
                if ckpt is None:
                    self.thread = None
                    return
            try:
                self.run_dir.save_checkpoint(ckpt)
            except BaseException as exc:  # handed to the main thread by submit() or wait()
                self.error = exc

    def wait(self) -> None:
        thread = self.thread
        if thread is not None:
            try:
                thread.join()
            except RuntimeError:  # a Ctrl-C inside submit()'s start(): the thread never ran
                self.thread = None
                self._drain()  # write the pending checkpoint here (the lock hands it out once)
        self._raise_error()

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def capture(session, state: TrainState, digest: str, config: dict | None = None) -> Checkpoint:
    """A copy of everything ``session`` and ``state`` hold now, safe to write while training
    goes on (arrays that training updates in place are copied; the rest is never mutated).
    ``digest`` is :func:`data_digest` of the session's data and ``config`` the experiment's
    ``to_dict()``, both computed once per run (never mutated: checkpoints share it)."""
    exp = session.experiment
    opt = session.optimizer.state_dict()
    position = state.position
    return Checkpoint(
        state=replace(
            state,
            history=list(state.history),
            best_params=dict(state.best_params) if state.best_params else None,
            position=None
            if position is None
            else EpochPosition(position.order, list(position.losses)),
        ),
        params={k: v.copy() for k, v in session.model.params.items()},
        optimizer={
            "steps": opt["steps"],
            "slots": {
                name: {k: v.copy() for k, v in slots.items()}
                for name, slots in opt["slots"].items()
            },
        },
        generators={name: rng.bit_generator.state for name, rng in session.rngs.items()},
        config=config if config is not None else exp.to_dict(),
        data_digest=digest,
        source=str(exp.source.resolve()) if exp.source else None,
    )


def train_and_record(
    session,
    registry,
    run_dir: RunDir,
    summary: dict,
    state: TrainState,
    progress=None,
    status=None,
    *,
    config: dict | None = None,
):
    """Train from ``state``, evaluate and write everything down; return ``(summary, run_dir)``.
    ``config`` is ``session.experiment.to_dict()`` when the caller has it already. However the
    run ends, summary.json says how, and the parameters are kept if they are finite."""
    config = config if config is not None else session.experiment.to_dict()
    info = RunInfo(session.experiment, session.dataset, session.model, run_dir.path)
    checkpoints = RunCheckpoints(session, registry, info, run_dir, state, config)
    restore_plugin_state(registry, info, state, status)
    t0 = time.perf_counter()
    previous_seconds = summary.get("wall_seconds", 0.0)
    try:
        train_once(
            session,
            registry,
            info,
            summary,
            run_dir,
            state=state,
            save=checkpoints.save,
            written=checkpoints.writer.wait,
            progress=progress,
            status=status,
        )
    except RunInterrupted as exc:
        raise interrupted(exc, summary, info, checkpoints.done, run_dir) from None
    except TrainingDiverged as exc:
        raise diverged(exc, summary, info, checkpoints.done, run_dir) from None
    except BaseException as exc:
        failure = failed(exc, summary, info, registry, run_dir)
        if failure is not None:
            raise failure from exc
        raise
    finally:
        summary["wall_seconds"] = previous_seconds + time.perf_counter() - t0
        if all(np.all(np.isfinite(p)) for p in session.model.params.values()):
            run_dir.save_params(session.model.params)
        run_dir.write_summary(summary)
    end_run(registry, info, summary, run_dir)
    return summary, run_dir


@holding_blas_threads  # the backend's BLAS threads, from the first epoch to the results
def train_once(
    session,
    registry,
    info: RunInfo,
    summary: dict,
    run_dir: RunDir | None = None,
    *,
    state: TrainState | None = None,
    save=None,
    written=None,
    progress=None,
    status=None,
) -> list[dict]:
    """The one path every command trains by (``prepare`` is the caller's): fit, evaluate, and
    for a run with a directory its diagnostics, demo and figures; return the history.

    Results go into ``summary`` as they come, so a failure part way leaves what was done.
    With ``run_dir`` each epoch's record is appended to its metrics, ``progress`` shows it,
    Ctrl-C and SIGTERM stop training gracefully, ``save(state)`` writes checkpoints and
    ``written()`` returns once every one is on disk. Without it (compare) nothing is written
    and Ctrl-C is Python's own."""
    exp = session.experiment
    showing = progress(exp.train.epochs) if progress else nullcontext(None)
    stopping = graceful_stop() if run_dir is not None else nullcontext(None)
    with showing as show, stopping as stop:
        on_epoch = partial(record_epoch, run_dir, show) if run_dir is not None else None
        try:
            history = fit(
                session,
                registry,
                info,
                on_epoch=on_epoch,
                state=state,
                save=save,
                stop=stop,
                on_status=status,
            )
        finally:
            if written is not None:
                written()  # every checkpoint is on disk before anything reports it
    summary["status"] = "stopped" if info.stop_reason else "finished"
    if info.stop_reason:
        summary["stop_reason"] = info.stop_reason
    if run_dir is not None and status is not None:
        status("evaluating the model on every split ...")
    summary.update(
        epoch_figures(history, len(session.dataset.splits["train"])),
        warmup_seconds=info.warmup_seconds,
        metrics=evaluate(session),
    )
    if run_dir is not None:
        if status is not None:
            status("writing the run's results and figures ...")
        record_results(session, history, run_dir, summary)
    return history


def record_epoch(run_dir: RunDir, show, record: dict) -> None:
    run_dir.append_metrics(record)
    if show is not None:
        show(record)


def record_results(session, history: list[dict], run_dir: RunDir, summary: dict) -> None:
    """What a finished run adds to its summary beyond the metrics: diagnostics at the end, the
    task's demo, and the figures drawn into ``run_dir``."""
    exp = session.experiment
    summary["diagnostics"] = Diagnostics(
        exp.diagnostics, session.model, session.dataset, exp.experiment.seed
    ).at_end()
    demo = session.task.demo(session.model, session.dataset, session.rngs["demo"])
    if demo is not None:
        summary["demo"] = demo.to_json()
    summary["figures"] = run_figures(
        run_dir.path, session.task, session.model, session.dataset, history
    )
    summary["diagnostics"]["figures"] = run_diagnostic_figures(
        run_dir.path, history, summary["diagnostics"]
    )


class RunCheckpoints:
    """The checkpoints of one run: captured on the training thread, written on the
    :class:`CheckpointWriter`'s; ``done`` says how far the newest one is (None: none yet)."""

    def __init__(
        self, session, registry, info: RunInfo, run_dir: RunDir, state: TrainState, config: dict
    ):
        self.session, self.registry, self.info, self.config = session, registry, info, config
        self.done = describe(state) if state.history or state.position else None
        self.writer = CheckpointWriter(run_dir)
        self.digest = data_digest(session.dataset.splits)

    def save(self, state: TrainState) -> None:
        state.plugin_state = pluginstate.collect(self.registry, self.info)
        self.writer.submit(capture(self.session, state, self.digest, self.config))
        self.done = describe(state)


def restore_plugin_state(registry, info: RunInfo, state: TrainState, status=None) -> None:
    """A resumed run: plugins get their own state back before ``on_run_start``."""
    if not state.plugin_state:
        return
    for name in pluginstate.restore(registry, info, state.plugin_state):
        if status is not None:
            status(
                f"warning: plugin {name!r} saved a state in the checkpoint but is not "
                f"loaded now; its state is not restored"
            )


def interrupted(
    exc: RunInterrupted, summary: dict, info: RunInfo, done: str | None, run_dir: RunDir
) -> RunInterrupted:
    """Ctrl-C or SIGTERM stopped training: the summary says so, the error how to resume."""
    summary.update(status="interrupted", stop_reason=str(exc), epochs_run=info.epoch)
    if done is None:
        return RunInterrupted(
            exc.signum,
            f"interrupted: {exc}; no checkpoint was written yet, so the run cannot be resumed",
        )
    return RunInterrupted(
        exc.signum,
        f"interrupted: {exc}; checkpoint saved ({done}"
        f" done). Resume with: rnnlab resume {run_dir.path}",
    )


def diverged(
    exc: TrainingDiverged, summary: dict, info: RunInfo, done: str | None, run_dir: RunDir
) -> TrainingDiverged:
    """NaN or infinity: the summary says so, the error where the last good checkpoint is."""
    kept = (
        f"The last good checkpoint ({done} done) is kept in {run_dir.path}"
        if done is not None
        else "No checkpoint was written before it"
    )
    summary.update(status="diverged", stop_reason=str(exc), epochs_run=info.epoch)
    return TrainingDiverged(f"{exc}. {kept}")


def failed(exc: BaseException, summary: dict, info: RunInfo, registry, run_dir: RunDir):
    """Any other error (or KeyboardInterrupt outside training): the summary and a traceback
    file record it; returns the plugin's error to raise instead, if a plugin caused it."""
    summary["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    failure = failures.plugin_error(exc, registry, run_dir.path)
    summary["error"] = str(failure) if failure else f"{type(exc).__name__}: {exc}"
    summary["epochs_run"] = info.epoch
    if summary["status"] == "failed":
        failures.write_traceback(run_dir.path, exc)
    return failure


def end_run(registry, info: RunInfo, summary: dict, run_dir: RunDir) -> None:
    """``on_run_end``; the run's results stand if it fails, and the summary says what failed."""
    try:
        registry.call("on_run_end", run=info, summary=summary)
    except Exception as exc:
        failures.write_traceback(run_dir.path, exc)
        run_dir.write_summary({**summary, "status": "failed", "error": str(exc)})
        raise


def describe(state: TrainState) -> str:
    """How far a checkpoint of ``state`` is: ``"3 epochs"`` or ``"3 epochs and 5 batches"``."""
    done = f"{state.epoch} epoch{'s' if state.epoch != 1 else ''}"
    batches = state.position.batches_done if state.position is not None else 0
    if batches:
        done += f" and {batches} batch{'es' if batches != 1 else ''}"
    return done


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
