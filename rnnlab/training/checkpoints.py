"""A run's checkpoints: when they are written, what they capture, how they are written (on a
background thread), and how a resume checks and restores one. Their file format is
:mod:`rnnlab.store.checkpoint`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from ..errors import RnnlabError
from ..experiment.config import Experiment, TrainConfig
from ..registry import state as pluginstate
from ..store.checkpoint import (
    Checkpoint,
    EpochPosition,
    HistoryDigest,
    HistoryRef,
    TrainState,
    config_differences,
    data_digest,
)
from ..store.rundir import CHECKPOINT, RunDir


# -- when ------------------------------------------------------------------------------------
class CheckpointSchedule:
    """Every ``every`` epochs (0: never by count) and whenever ``seconds`` of wall time have
    passed since the last checkpoint (0: never by time)."""

    def __init__(self, every: int, seconds: float, clock=time.monotonic):
        self.every, self.seconds, self.clock = every, seconds, clock
        self.last = clock()

    def due_after_epoch(self, epoch: int) -> bool:
        return (self.every > 0 and epoch % self.every == 0) or self._time_is_up()

    def due_after_batch(self) -> bool:
        return self._time_is_up()

    def _time_is_up(self) -> bool:
        return self.seconds > 0 and self.clock() - self.last >= self.seconds

    def written(self) -> None:
        self.last = self.clock()


class Checkpoints:
    """When :func:`fit` writes a checkpoint of ``state``: as the schedule asks (after a batch or
    an epoch), when a stop is seen, and at the end of training unless the last epoch wrote one."""

    def __init__(
        self, cfg: TrainConfig, state: TrainState, save: Callable[[TrainState], None] | None
    ):
        self.schedule = CheckpointSchedule(cfg.checkpoint_every, cfg.checkpoint_seconds)
        self.state, self.save, self.saved_epoch = state, save, None

    def write(self) -> None:
        if self.save is not None:
            self.save(self.state)
        self.schedule.written()

    def after_batch(self) -> None:
        if self.schedule.due_after_batch():
            self.write()

    def after_epoch(self, epoch: int) -> None:
        if self.schedule.due_after_epoch(epoch):
            self.write()
            self.saved_epoch = epoch

    def at_end(self) -> None:
        if self.saved_epoch != self.state.epoch:  # the end of training always has a checkpoint
            self.write()


# -- what and how ----------------------------------------------------------------------------
def capture(
    session, state: TrainState, digest: str, config: dict, history: HistoryRef | None = None
) -> Checkpoint:
    """A copy of everything ``session`` and ``state`` hold now, safe to write while training
    goes on (arrays that training updates in place are copied; the rest is never mutated).
    ``digest`` is :func:`data_digest` of the session's data and ``config`` the experiment's
    ``to_dict()``, both computed once per run (never mutated: checkpoints share it). With
    ``history`` (where the run's metrics.jsonl holds the state's history) the history is not
    copied."""
    exp = session.experiment
    opt = session.optimizer.state_dict()
    position = state.position
    return Checkpoint(
        state=replace(
            state,
            history=list(state.history) if history is None else [],
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
        config=config,
        data_digest=digest,
        source=str(exp.source.resolve()) if exp.source else None,
        history=history,
    )


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
        self.last: Checkpoint | None = None  # the newest one on disk
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
                self.last = ckpt
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


class RunCheckpoints:
    """The checkpoints of one run: captured on the training thread, written on the
    :class:`CheckpointWriter`'s; ``done`` says how far the newest one is (None: none yet).
    ``info`` is the run's :class:`rnnlab.training.loop.RunInfo` (what plugins see).

    ``metrics`` hears every line the run's metrics.jsonl holds (:meth:`wrote`), so that a
    checkpoint refers to the history there instead of copying it: writing a checkpoint costs
    the same at epoch 1000 as at epoch 1."""

    def __init__(self, session, registry, info, run_dir: RunDir, state: TrainState, config: dict):
        self.session, self.registry, self.info, self.config = session, registry, info, config
        self.done = describe(state) if state.history or state.position else None
        self.resumed_from = self.done  # on disk already
        self.writer = CheckpointWriter(run_dir)
        self.digest = data_digest(session.dataset.splits)
        self.metrics = HistoryDigest()

    @property
    def on_disk(self) -> str | None:
        """How far the newest checkpoint written whole is (None: none is)."""
        last = self.writer.last
        return describe(last.state) if last is not None else self.resumed_from

    def wrote(self, line: bytes) -> None:
        """A line of metrics.jsonl was written (an epoch's record)."""
        self.metrics.add(line)

    def save(self, state: TrainState) -> None:
        state.plugin_state = pluginstate.collect(self.registry, self.info)
        history = self.metrics.ref()
        if history.lines != len(state.history):  # not what the file holds: keep it whole
            history = None
        self.writer.submit(capture(self.session, state, self.digest, self.config, history))
        self.done = describe(state)


def describe(state: TrainState) -> str:
    """How far a checkpoint of ``state`` is: ``"3 epochs"`` or ``"3 epochs and 5 batches"``."""
    done = f"{state.epoch} epoch{'s' if state.epoch != 1 else ''}"
    batches = state.position.batches_done if state.position is not None else 0
    if batches:
        done += f" and {batches} batch{'es' if batches != 1 else ''}"
    return done


# -- resuming from one -----------------------------------------------------------------------
def check_same_experiment(run_dir: RunDir, ckpt: Checkpoint, config: dict) -> None:
    """``config`` (an experiment's ``to_dict()``) is the checkpoint's experiment."""
    differences = config_differences(ckpt.config, config)
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
