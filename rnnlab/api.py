"""rnnlab from Python: run an experiment, load a run back, use its trained model.

    import rnnlab
    run = rnnlab.run("experiments/sine.toml", set=["model.cell=gru"])
    run.metrics["test"]["mse"], run.history[-1]["val_loss"]
    y = rnnlab.load(run.dir).model.predict(x)   # x time-major [T, N, I]

The command line is a thin layer over the functions here (`rnnlab run`, `resume`, `generate`):
one implementation, the same validation, the same errors (:mod:`rnnlab.errors`).
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .cells import CellSpec
from .errors import RnnlabError
from .experiment.config import apply_overrides, build_experiment, plugin_files, read_toml
from .experiment.load import ExperimentSource, Warn, items, load_experiment, load_run
from .experiment.schema import Experiment
from .export.safetensors_file import read_safetensors
from .nn.lengths import inert_padding, lengths_problem
from .nn.model import Model, directions, param_name
from .registry.failures import guarded_task, plugin_error
from .registry.manager import PluginInfo, Registry
from .specs import Split, Task, TaskContext
from .store.rundir import CONFIG, RunDir

__all__ = ["Forward", "Run", "TrainedModel", "load", "run"]

State = np.ndarray | tuple[np.ndarray, ...]
"""Recurrent state in PyTorch's layout: ``h [layers, N, H]``, or ``(h, c)`` for an LSTM (one
array per state tensor of the cell, in the order of its :class:`rnnlab.cells.CellSpec`)."""


def warn_plugin(info: PluginInfo) -> None:
    """A plugin failed to load: a Python warning (the rest of the plugins keep working),
    located at the user's line that called rnnlab."""
    warnings.warn(f"plugin {info.label} {info.status}", stacklevel=caller_level())


def caller_level() -> int:
    """The ``stacklevel`` of the first frame outside rnnlab, seen from the caller."""
    package, frame, level = str(Path(__file__).parent), sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def plugin_errors_as_rnnlab_errors(fn):
    """An exception raised by plugin code becomes the PluginError the command line prints (one
    message naming the plugin and its file; the original is its ``__cause__``)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            failure = plugin_error(exc)
            if failure is None:  # rnnlab's own errors and bugs stay as they are
                raise
            raise failure from exc

    return call


# -- running ---------------------------------------------------------------------------------
def callbacks(console) -> dict[str, Callable]:
    """``run_experiment``'s progress and status callbacks on a rich console (None: silent)."""
    if console is None:
        return {}
    from .display.terminal import epoch_progress, status_line

    return {
        "progress": lambda epochs: epoch_progress(console, epochs),
        "status": lambda message: status_line(console, message),
    }


def start_run(
    experiment: ExperimentSource,
    *,
    sets: Iterable[str] = (),
    out: str | os.PathLike[str] = "runs",
    plugins: Iterable[str | os.PathLike[str]] = (),
    console=None,
    warn: Warn = warn_plugin,
) -> Run:
    """Validate, train, evaluate and record ``experiment`` in a new directory under ``out``;
    progress goes to ``console`` (a rich Console; None: nothing is shown). What `rnnlab run`
    and :func:`rnnlab.run` do."""
    from .training.run import run_experiment

    plugins = items(plugins)
    exp, registry = load_experiment(experiment, sets, plugins, warn=warn)
    _, run_dir = run_experiment(exp, registry, out_root=Path(out), **callbacks(console))
    return Run(run_dir.path, plugins=plugins, warn=warn)


def continue_run(
    run_dir: str | os.PathLike[str],
    *,
    experiment: ExperimentSource | None = None,
    sets: Iterable[str] = (),
    plugins: Iterable[str | os.PathLike[str]] = (),
    console=None,
    warn: Warn = warn_plugin,
) -> Run:
    """Continue the interrupted run in ``run_dir`` from its checkpoint (``experiment``, when
    given, must describe the same experiment; default: the one the run records). What
    `rnnlab resume` and :meth:`Run.resume` do."""
    from .training.run import resume_experiment

    plugins = items(plugins)
    if experiment is None:
        exp, registry, folder = load_run(run_dir, sets, plugins, warn=warn)
    else:
        folder = RunDir.open(Path(run_dir))
        exp, registry = load_experiment(experiment, sets, plugins, warn=warn)
    resume_experiment(folder, registry, experiment=exp, **callbacks(console))
    return Run(folder.path, plugins=plugins, warn=warn)


def console_for(quiet: bool):
    """Where :func:`run` shows progress: None when quiet; rich renders a notebook's output."""
    if quiet:
        return None
    from rich.console import Console

    return Console()


@plugin_errors_as_rnnlab_errors
def run(
    experiment: ExperimentSource,
    *,
    set: Iterable[str] = (),  # named as --set
    out: str | os.PathLike[str] = "runs",
    plugins: Iterable[str | os.PathLike[str]] = (),
    quiet: bool = False,
) -> Run:
    """Run an experiment as `rnnlab run` does and return the finished :class:`Run`.

    ``experiment`` is a TOML file or a dict shaped like one; ``set`` holds ``TABLE.KEY=VALUE``
    overrides (as ``--set``); ``out`` is the folder that receives the run directory;
    ``plugins`` are extra plugin files (as ``--plugin``). Progress and the final table are shown
    unless ``quiet``. Errors are the command line's, as exceptions: :class:`ConfigError` (the
    experiment is invalid; nothing was run), :class:`PluginError`, :class:`TrainingDiverged`,
    :class:`RunInterrupted` (Ctrl-C; the run directory holds a checkpoint to resume).
    """
    console = console_for(quiet)
    result = start_run(experiment, sets=set, out=out, plugins=plugins, console=console)
    if console is not None:
        from .display.terminal import print_summary

        print_summary(console, result.summary, result.dir)
    return result


def load(
    run_dir: str | os.PathLike[str],
    *,
    backend: str | None = None,
    plugins: Iterable[str | os.PathLike[str]] = (),
) -> Run:
    """A recorded run directory, to read its results and use its trained model.

    ``backend`` runs the model on another backend than the run's; ``plugins`` are extra plugin
    files (when the run's own moved). Raises :class:`RnnlabError` when ``run_dir`` is not a run
    directory. A ``.safetensors`` file written by `rnnlab export --format safetensors` loads
    as a run too (its config, loss, target and parameters; no history, no checkpoint).
    """
    if Path(run_dir).suffix == ".safetensors" and Path(run_dir).is_file():
        return WeightsRun(run_dir, backend=backend, plugins=plugins)
    return Run(run_dir, backend=backend, plugins=plugins)


# -- a run and its model ---------------------------------------------------------------------
class Forward(NamedTuple):
    """What :meth:`TrainedModel.forward` returns."""

    outputs: np.ndarray
    """The head's outputs: ``[N, O]`` for target "last", ``[T, N, O]`` for "every"."""
    hidden: np.ndarray
    """The top layer's hidden state at every step, ``[T, N, H]`` (0 after a sequence's end;
    bidirectional: ``[T, N, 2H]``, ``[forward ; reverse]``)."""
    state: State
    """Every layer's final state, PyTorch's ``h_n [layers, N, H]`` (LSTM: ``(h_n, c_n)``;
    bidirectional: ``[layers * 2, N, H]``, each layer's forward then reverse direction)."""


class TrainedModel:
    """A run's trained model on inputs of your own: time-major ``x [T, N, input_size]``, as the
    tasks' data. Parameters keep PyTorch's names; :attr:`params` is the run's ``params.npz``."""

    def __init__(self, model: Model, *, loss: str, target: str):
        self._model, self._loss, self._target = model, loss, target

    @property
    def loss(self) -> str:
        """ "mse" (outputs are values) or "xent" (outputs are logits over classes)."""
        return self._loss

    @property
    def target(self) -> str:
        """Where the task reads outputs: the "last" step of each sequence, or "every" step."""
        return self._target

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters, PyTorch's names and shapes (the arrays of :attr:`Run.params`)."""
        return self._model.params

    @property
    def cell(self) -> str:
        """ "rnn", "lstm" or "gru"."""
        return self._model.cfg.cell

    @property
    def hidden_size(self) -> int:
        return self._model.cfg.hidden_size

    @property
    def layers(self) -> int:
        """Stacked recurrent layers."""
        return self._model.cfg.layers

    @property
    def input_size(self) -> int:
        """Inputs per step: the last axis of ``x``."""
        return int(input_size_of(self.params, self._model.cell, self.hidden_size))

    @property
    def output_size(self) -> int:
        """Outputs per prediction: the last axis of :meth:`predict`'s result."""
        return int(self.params[param_name("bias")].shape[0])

    @property
    def dtype(self) -> np.dtype:
        """The parameters' floating-point type; inputs are converted to it."""
        return self.params[param_name("weight")].dtype

    def __repr__(self) -> str:
        return (
            f"TrainedModel(cell={self.cell!r}, input_size={self.input_size}, "
            f"hidden_size={self.hidden_size}, layers={self.layers}, "
            f"output_size={self.output_size}, target={self.target!r})"
        )

    def predict(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """The head's outputs for ``x [T, N, input_size]``: ``[N, O]`` for target "last",
        ``[T, N, O]`` for "every" (values for loss "mse", logits for "xent").

        ``lengths`` (integers ``[N]``, ``1 <= lengths[n] <= T``) gives each sequence's own
        length in a padded batch, with PyTorch's packed semantics: each sequence gets the
        result it gets alone, whatever the padding holds. Target "last" reads each sequence's
        own last step; with target "every", outputs at padded steps are the head's bias (the
        hidden state there is 0) and mean nothing."""
        return self.forward(x, lengths=lengths).outputs

    @plugin_errors_as_rnnlab_errors
    def forward(
        self, x: np.ndarray, *, lengths: np.ndarray | None = None, state: State | None = None
    ) -> Forward:
        """Outputs, the top layer's hidden states and the final state of every layer, from
        ``state`` (default zeros; a previous call's ``state`` continues those sequences)."""
        x = self._inputs(x)
        if lengths is not None:
            x, lengths = self._padded(x, lengths)
        model = self._model
        hs, final, _ = model._layers_forward(x, self._layer_state(state, x.shape[1]), lengths)
        outputs = model._head(model._top(hs, final, self.target, lengths))
        return Forward(outputs, hs, self._torch_state(final))

    @staticmethod
    def _padded(x: np.ndarray, lengths) -> tuple[np.ndarray, np.ndarray]:
        """Checked int64 ``lengths`` and ``x`` with zeros after each sequence's end."""
        split = Split(x, np.empty((x.shape[1], 0)), np.asarray(lengths))
        problem = lengths_problem(split, 0)
        if problem:
            raise ValueError(problem)
        split = inert_padding(split, "last")
        return split.x, split.lengths

    def _inputs(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"x must be time-major [T, N, {self.input_size}] (steps, "
                f"sequences, inputs), got shape {list(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x holds no steps or no sequences: shape {list(x.shape)}")
        return np.ascontiguousarray(x, dtype=self.dtype)

    @property
    def _state_names(self) -> tuple[str, ...]:
        """The tensors a layer carries: ``("h",)``, or ``("h", "c")`` for an LSTM."""
        return self._model.cell.state

    def _layer_state(self, state: State | None, n: int):
        """PyTorch's layout -> the core's: per layer ``(h,)`` or ``(h, c)``, each ``[N, H]``."""
        if state is None:
            return None
        names = self._state_names
        parts = state if isinstance(state, tuple) else (state,)
        if len(parts) != len(names):
            wanted = f"({', '.join(names)})" if len(names) > 1 else f"one array {names[0]}"
            raise ValueError(f"state must be {wanted} for a {self.cell}")
        rows = self.layers * self._model.directions  # PyTorch's h_0: layers * directions
        shape = (rows, n, self.hidden_size)
        cell = self._model.cell  # a complex state tensor stays complex
        arrays = [
            np.asarray(p, dtype=cell.state_dtype(name, self.dtype))
            for p, name in zip(parts, names, strict=True)
        ]
        for a in arrays:
            if a.shape != shape:
                what = "layers * 2" if rows != self.layers else "layers"
                raise ValueError(
                    f"state arrays must be [{what}, N, hidden_size] = "
                    f"{list(shape)}, got {list(a.shape)}"
                )
        return [tuple(np.ascontiguousarray(a[k]) for a in arrays) for k in range(rows)]

    def _torch_state(self, final) -> State:
        """The core's final states -> PyTorch's layout: ``h_n``, or ``(h_n, c_n)``."""
        stacked = tuple(
            np.stack([layer[i] for layer in final]) for i in range(len(self._state_names))
        )
        return stacked if len(stacked) > 1 else stacked[0]


class Run:
    """One run directory: the experiment, its results and its trained model.

    Made by :func:`rnnlab.run` and :func:`rnnlab.load`. Files are read when first used; after
    :meth:`resume` they are read again.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        backend: str | None = None,
        plugins: Iterable[str | os.PathLike[str]] = (),
        warn: Warn = warn_plugin,
    ):
        self._folder = RunDir.open(Path(run_dir))
        self._backend, self._plugins, self._warn = backend, tuple(items(plugins)), warn

    @property
    def dir(self) -> Path:
        """The run directory."""
        return self._folder.path

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, status={self.status!r})"

    def __fspath__(self) -> str:
        return str(self.dir)

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved experiment (config.toml): every table, every default made explicit."""
        return read_toml(self.dir / CONFIG)

    @cached_property
    def summary(self) -> dict[str, Any]:
        """summary.json: status, metrics, timings, versions, the task's demo."""
        return self._folder.read_summary()

    @property
    def status(self) -> str:
        """ "finished", "stopped" (by a plugin), "interrupted", "diverged", "failed" or
        "running"."""
        return str(self.summary.get("status", "unknown"))

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Final metrics: split -> metric name -> value."""
        return self.summary.get("metrics", {})

    @cached_property
    def history(self) -> list[dict[str, Any]]:
        """One dict per epoch (metrics.jsonl): epoch, loss, val_loss, lr, seconds, best_epoch."""
        return self._folder.read_metrics()

    @cached_property
    def params(self) -> dict[str, np.ndarray]:
        """The trained parameters (params.npz), with PyTorch's names and shapes."""
        return self._folder.load_params()

    @cached_property
    @plugin_errors_as_rnnlab_errors
    def model(self) -> TrainedModel:
        """The trained model, on the run's backend (or ``load(..., backend=...)``)."""
        loss, target = self.summary.get("loss"), self.summary.get("target")
        if loss is None or target is None:  # a run recorded before summaries said so
            loss, target = self._data_kind()
        return TrainedModel(self._core_model, loss=loss, target=target)

    @cached_property
    def _core_model(self) -> Model:
        """The core's model of this run: its cell, its backend and its trained parameters."""
        from .training.session import load_backend

        exp, registry = self._recorded
        cell = registry.cell(exp.model.cell)
        self._check_shapes(exp, cell)
        return Model(exp.model, load_backend(exp, registry), self.params, cell)

    @cached_property
    def _recorded(self) -> tuple[Experiment, Registry]:
        sets = [f"train.backend={self._backend}"] if self._backend else []
        exp, registry, _ = load_run(self._folder, sets, self._plugins, warn=self._warn)
        return exp, registry

    def _check_shapes(self, exp: Experiment, cell: CellSpec) -> None:
        """params.npz must hold exactly the parameters config.toml's model has."""
        p, misfit = self.params, f"{self.dir}: its parameters do not fit the model of {CONFIG}"
        head = param_name("bias")
        inputs = input_size_of(p, cell, exp.model.hidden_size)
        if inputs is None or head not in p:
            raise RnnlabError(misfit)
        m = exp.model
        D = directions(m)
        expected = {
            param_name(key, k, reverse): shape
            for k in range(m.layers)
            for reverse in (False, True)[:D]
            for key, shape in cell.layer_shapes(
                inputs if k == 0 else D * m.hidden_size, m.hidden_size
            ).items()
        }
        outputs = int(p[head].shape[0])
        expected.update(
            {param_name("weight"): (outputs, D * m.hidden_size), param_name("bias"): (outputs,)}
        )
        if {k: v.shape for k, v in p.items()} != expected:
            raise RnnlabError(misfit)

    def _data_kind(self) -> tuple[str, str]:
        """Loss and target of a run whose summary does not record them: built from the task."""
        from .training.session import prepare

        dataset = prepare(*self._recorded).dataset
        return dataset.loss, dataset.target

    @plugin_errors_as_rnnlab_errors
    def generate(
        self,
        prime: str,
        length: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
    ) -> str:
        """The ``length`` characters the model writes after ``prime`` (the prime itself is not
        included), for a task that generates text. ``temperature`` 0 picks the likeliest
        character; ``top_k`` > 0 samples among the k likeliest; ``seed`` makes it repeatable."""
        exp, registry = self._recorded
        task = guarded_task(
            registry, exp.task.name, dict(exp.task.options), TaskContext(exp.base_dir)
        )
        if type(task).generate is Task.generate:
            raise RnnlabError(f"{self.dir}: task {exp.task.name!r} does not generate text")
        if exp.model.bidirectional:
            raise RnnlabError(
                f"{self.dir}: the model is bidirectional: its reverse direction reads each "
                f"window from its end, so it cannot write text one character at a time; train "
                f"with model.bidirectional = false to generate"
            )
        return task.generate(
            self._core_model,
            self.summary.get("dataset", {}),
            prime,
            length,
            temperature,
            top_k,
            np.random.default_rng(seed),
        )

    @plugin_errors_as_rnnlab_errors
    def resume(
        self,
        *,
        set: Iterable[str] = (),  # named as --set
        plugins: Iterable[str | os.PathLike[str]] = (),
        quiet: bool = False,
    ) -> Run:
        """Continue this run from its checkpoint, as `rnnlab resume` does; it ends exactly as
        if never interrupted. ``set`` may change only ``train.epochs`` (with a constant
        learning rate), ``train.checkpoint_every``, ``train.checkpoint_seconds`` and
        ``train.threads``. Returns this run, with its files read again."""
        console = console_for(quiet)
        continue_run(
            self.dir,
            sets=set,
            plugins=[*self._plugins, *items(plugins)],
            console=console,
            warn=self._warn,
        )
        for name in ("config", "summary", "history", "params", "model", "_core_model", "_recorded"):
            self.__dict__.pop(name, None)
        if console is not None:
            from .display.terminal import print_summary

            print_summary(console, self.summary, self.dir)
        return self


class WeightsRun(Run):
    """A run as a safetensors file holds it: config, loss, target and parameters."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        backend: str | None = None,
        plugins: Iterable[str | os.PathLike[str]] = (),
        warn: Warn = warn_plugin,
    ):
        self._path = Path(path)
        if not self._path.is_file():
            raise RnnlabError(f"{self._path}: no such file")
        self._params, self._config, self._summary = read_safetensors(self._path)
        self._backend, self._plugins, self._warn = backend, tuple(items(plugins)), warn

    @property
    def dir(self) -> Path:
        """The safetensors file (a run loaded from one has no directory)."""
        return self._path

    @cached_property
    def config(self) -> dict[str, Any]:
        return self._config

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self._summary

    @cached_property
    def history(self) -> list[dict[str, Any]]:
        return []

    @cached_property
    def params(self) -> dict[str, np.ndarray]:
        return self._params

    @cached_property
    def _recorded(self):
        raw = copy.deepcopy(self._config)
        sets = [f"train.backend={self._backend}"] if self._backend else []
        origins = apply_overrides(raw, sets)
        files = [*plugin_files(raw, self._path), *(Path(p) for p in self._plugins)]
        registry = Registry(files)
        for info in registry.failures():
            self._warn(info)
        return build_experiment(raw, registry, source=self._path, origins=origins), registry

    def resume(self, **_) -> Run:
        raise RnnlabError(
            f"{self._path}: a safetensors file holds no checkpoint; resume the "
            f"run directory it was exported from"
        )


def input_size_of(params: dict, cell: CellSpec, hidden_size: int) -> int | None:
    """The input size of layer 0 read off its tensors: the first tensor whose shape grows by
    one along an axis per input (``weight_ih [G*H, I]``, the lru's ``B_re [H, I]``); None when
    no tensor of layer 0 is there."""
    for spec in cell.parameters:
        one, two = spec.shape(1, hidden_size), spec.shape(2, hidden_size)
        name = param_name(spec.key, 0)
        for axis, (a, b) in enumerate(zip(one, two, strict=True)):
            if b - a == 1 and name in params and params[name].ndim == len(one):
                return int(params[name].shape[axis]) - (a - 1)
    return None
