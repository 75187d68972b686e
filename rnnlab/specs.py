"""The objects that cross the plugin boundary: option declarations, task and backend specs,
datasets, and the base classes a task or backend plugin builds on.

Arrays are time-major: inputs ``x`` are ``[T, N, input_size]``. Targets depend on the task's
``target`` ("last": one target per sequence, "every": one per step) and ``loss`` ("mse": float
targets with a trailing ``output_size`` axis; "xent": integer class indices, no trailing axis).
Sequences may differ in length (``Split.lengths``, PyTorch's packed semantics; see
:mod:`rnnlab.nn.lengths`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .cells import BUILTIN_CELLS
from .errors import RnnlabError

LOSSES = ("mse", "xent")
TARGETS = ("last", "every")
CELLS = tuple(BUILTIN_CELLS)  # the built-in cells; plugins may add more (rnnlab.cells)
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Option:
    """One configurable key: its type, default and the values it accepts.

    ``ge``/``gt``/``le``/``lt`` bound numbers (inclusive / exclusive / inclusive / exclusive);
    ``choices`` lists the accepted values; ``item`` is the element type of a list option;
    ``max_length`` bounds a string's length.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    choices: tuple | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    item: type | None = None
    lt: float | None = None  # fields are only ever added at the end
    max_length: int | None = None


@dataclass
class Split:
    """One split of a dataset: time-major inputs and their targets, and optionally the length
    of every sequence.

    ``lengths`` (int64 ``[N]``, ``1 <= lengths[n] <= T``): sequence ``n`` is ``x[:lengths[n], n]``
    and ``x`` is padded after its end. Semantics are PyTorch's ``pack_padded_sequence(...,
    enforce_sorted=False)``: each sequence's recurrence stops at its own last valid step, whose
    state is its final state (what target "last" reads); outputs at padded steps are 0; with
    target "every" the targets at padded steps are ignored and losses and metrics are means over
    valid steps only. Values in the padding never matter. None: every sequence is full length.
    """

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return self.x.shape[1]


@dataclass
class Dataset:
    """What a task builds for one seed: the splits and how to score a model on them.

    ``chunk_length = 0``: every split holds independent sequences, shuffled into minibatches.
    ``chunk_length = k > 0`` (stateful mode, target "every"): every split is one continuous
    stream ``x [L, 1, I]``; the core cuts the train stream into ``batch_size`` parallel streams,
    walks them in consecutive chunks of ``k`` steps carrying the hidden state from chunk to chunk
    (truncated BPTT), and scores a split with the state carried through it (see
    :mod:`rnnlab.training.stateful`).
    """

    splits: dict[str, Split]
    input_size: int
    output_size: int
    loss: str  # one of LOSSES
    target: str  # one of TARGETS
    meta: dict[str, Any] = field(default_factory=dict)  # the task's own, not saved
    saved: dict[str, Any] = field(default_factory=dict)  # JSON-ready, saved with the run
    chunk_length: int = 0  # > 0: stateful mode, see above


@dataclass
class Demo:
    """What a trained model can show: a title and either a table or a block of text."""

    title: str
    columns: list[str] | None = None
    rows: list[list[Any]] | None = None
    text: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class TaskContext:
    """What a task may know about where it runs: the folder of the experiment file."""

    base_dir: Path


class Task:
    """Base class for a task. Subclasses implement :meth:`build` and may override the rest.

    ``solved`` (optional) says what solving the task means, as ``(METRIC, OP, NUMBER)`` about
    the test split's metric, e.g. ``("recall_acc", ">=", 0.99)`` with OP one of ``<``, ``<=``,
    ``>``, ``>=``: `rnnlab stats`, `rnnlab matrix` and a sweep's report count the runs that meet
    it and give the solve rate over seeds with its Wilson interval, unless the command line or
    the experiment's ``[stats]`` table gives its own ``solved``. A class attribute, or set in
    ``__init__`` from the options; None (the default): the task declares no rule.
    """

    solved: tuple[str, str, float] | None = None

    def __init__(self, options: dict[str, Any], context: TaskContext):
        self.options = options
        self.context = context

    def build(self, rng: np.random.Generator) -> Dataset:
        """Return the train / val / test splits for this seed."""
        raise NotImplementedError

    def metrics(self, model, dataset: Dataset, split: str) -> dict[str, float]:
        """Score a trained model (:class:`rnnlab.nn.model.Model`) on one split. Default: the
        loss."""
        s = dataset.splits[split]
        return {"loss": model.loss(s.x, s.y, dataset.loss, dataset.target, lengths=s.lengths)}

    def demo(self, model, dataset: Dataset, rng: np.random.Generator) -> Demo | None:
        """Optionally show what the trained model does."""
        return None

    def generate(
        self,
        model,
        saved: dict[str, Any],
        prime: str,
        length: int,
        temperature: float,
        top_k: int,
        rng: np.random.Generator,
    ) -> str:
        """Optionally continue the text ``prime`` by ``length`` characters with a trained model.

        ``saved`` is summary.json's "dataset" table (``Dataset.saved`` plus the split sizes);
        ``temperature`` 0 is greedy; ``top_k`` 0 samples from every character. Returns the
        continuation, without the prime.
        """
        raise RnnlabError(f"task {type(self).__name__} does not generate text")

    def figure(self, model, dataset: Dataset, fig) -> str | None:
        """Optionally draw what the trained model does on ``fig``, an empty matplotlib
        ``Figure`` (add axes with ``fig.subplots()``), and return the name of the file it
        becomes in the run directory: ``"forecast"`` -> ``forecast.png``. The default draws
        nothing and returns None. Called only when matplotlib is installed, so a task needs no
        import of it; called at the end of every finished run and by `rnnlab plot`.
        """
        return None


@dataclass(frozen=True)
class TaskSpec:
    """A task a plugin provides: its name, options and a factory ``(options, context) -> Task``."""

    name: str
    factory: Callable[[dict[str, Any], TaskContext], Task]
    options: tuple[Option, ...] = ()
    description: str = ""


class Backend:
    """Base class for a backend: the recurrence of one layer, forward and backward.

    ``weights`` holds one layer's arrays keyed as the cell's spec lists them
    (:class:`rnnlab.cells.CellSpec`), without the layer suffix; for the cells PyTorch has,
    PyTorch's ``weight_ih [G*H, I]``, ``weight_hh [G*H, H]``, ``bias_ih [G*H]``, ``bias_hh
    [G*H]`` (G: the cell's gate count). ``state0`` is a tuple with one ``[N, H]`` array per
    state tensor of the cell (complex where the spec says so): ``(h0,)``, or ``(h0, c0)`` for
    lstm. ``layer_forward`` returns the layer's per-step outputs (the spec's ``output``) as
    ``hs``. ``cells`` names the cells the backend implements (built-in or registered by a
    plugin); :meth:`runs_cell` is what the core asks.

    ``features`` says what a backend's kernels honour beyond the basic contract; the core refuses
    data or options that need a feature a backend does not declare. ``"lengths"``:
    ``layer_forward`` accepts ``lengths`` (see there); a backend without it is only ever called
    without that argument.
    """

    name = "?"
    cells: tuple[str, ...] = ("rnn",)
    dtypes: tuple[str, ...] = DTYPES
    features: frozenset[str] = frozenset()
    # the plan features (``EpochPlan.features()``) that :meth:`epoch_runner` implements; the
    # core asks for the runner only when a plan uses nothing else. Empty: no epoch runner.
    epoch_features: frozenset[str] = frozenset()
    # the model features (``rnnlab.nn.model.model_features``) :meth:`forward_runner` implements,
    # and "lengths" when it accepts lengths. Empty: no compiled forward.
    forward_features: frozenset[str] = frozenset()

    def runs_cell(self, cell) -> bool:
        """Whether this backend runs ``cell`` (a :class:`rnnlab.cells.CellSpec`). Default: its
        name is in :attr:`cells`. A backend that runs cells from their specs (the reference
        runs any spec carrying ``kernels["numpy"]``) says yes to such a spec and runs it from
        then on."""
        return cell.name in self.cells

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh", lengths=None):
        """Run one layer over ``x [T, N, I]``; return ``(hs [T, N, H], final_state, cache)``.

        With ``lengths`` (int64 ``[N]``, only passed when ``"lengths"`` is in ``features``):
        sequence ``n`` runs for ``lengths[n]`` steps; ``hs[t, n] = 0`` for ``t >= lengths[n]``;
        its final state is its state at step ``lengths[n] - 1``; values of ``x`` at padded
        steps never influence anything (select, never multiply by a 0/1 mask). Kernels only
        ever run forward in time: the core composes directions and layers.
        """
        raise NotImplementedError

    def layer_backward(self, cell, weights, cache, dhs):
        """Backpropagate ``dhs [T, N, H]`` through the layer; return ``(grads, dx)``.

        ``grads`` is keyed like ``weights``; ``dx`` is ``[T, N, I]``. The initial state is a
        constant: its gradient is not returned. With lengths (kept in ``cache``): ``dhs`` at
        padded steps is ignored, ``dx`` is 0 there and padded steps add nothing to ``grads``.
        """
        raise NotImplementedError

    def warm_up(self, plan) -> None:
        """Get ready for ``plan`` (a :class:`rnnlab.training.loop.EpochPlan`) before training
        starts:
        a backend that compiles its kernels compiles (or loads) them here, so that the cost is
        shown and timed as warm-up instead of landing in the first epoch. Default: nothing."""

    def blas_threads(self, plan) -> int | None:
        """How many threads NumPy's BLAS (matrix products) should use while ``plan`` (a
        :class:`rnnlab.training.loop.EpochPlan`) trains and is evaluated: ``plan.train.threads``
        when it is set (> 0), else the backend's choice. The core holds that count for the run
        and puts the previous one back afterwards; the run's summary records it. None (the
        default): BLAS is left as the environment sets it."""
        return None

    def epoch_runner(self, plan):
        """Optionally take over a whole epoch (batches, loss, clipping, optimizer step).

        ``plan`` is a :class:`rnnlab.training.loop.EpochPlan`. The core calls this only when every
        feature of the plan (``plan.features()``, e.g. ``"cell=rnn"``, ``"optimizer=adam"``,
        ``"momentum"``, ``"lengths"``) is in :attr:`epoch_features`; a feature added to rnnlab
        later is in no existing declaration, so such a plan runs through the core loop. Return a
        callable ``run(params, optimizer, x, y, order, lr, lengths=None) -> per-batch losses``
        that updates ``params``, ``optimizer.slots`` and ``optimizer.steps`` in place exactly as
        the core loop would, or None to let the core loop run (the default). The core loop is
        the reference a runner is tested against. It is called once before training, after
        :meth:`warm_up`, and timed with it as the backend's warm-up.

        Keywords, each passed only to a plan that uses it:

        - ``lengths`` (the train split's, int64 ``[N]``; feature ``"lengths"``): the runner
          trims each batch to its longest sequence, as the core loop does.
        - ``dropout_rng`` (feature ``"dropout"``): the run's dropout generator; for each batch
          in order the runner draws ``rnnlab.plugin.dropout_masks(plan.model, rng, T_b, N_b,
          dtype)`` (``T_b``: the batch's trimmed length, ``N_b``: its sequences in ``order``'s
          order), exactly the core loop's draws.
        - ``chunk_length = k`` (feature ``"chunk_length"``, a stateful dataset): ``order`` is
          None and ``x [S, B, I]``, ``y`` hold B parallel streams. The epoch walks chunks of
          ``k`` steps from step 0 (the last may be shorter); the state starts at zeros and is
          carried from chunk to chunk, gradients stop at chunk boundaries, and each chunk is
          one optimizer step (clipped first unless ``grad_clip = "none"``). It returns each
          chunk's mean loss per target, as :func:`rnnlab.training.stateful.stateful_epoch` computes
          them.

        ``plan.train.threads`` (0: the runner's choice) may set how many threads the runner
        uses; it is not a plan feature, as results must not depend on it.
        """
        return None

    def forward_runner(self, model_cfg):
        """Optionally a compiled forward pass, for validation, metrics, prediction and
        generation: ``fwd(params, x, target, lengths=None, state=None) -> (outputs, final)``
        returning what :meth:`rnnlab.nn.model.Model.outputs` returns (head outputs ``[N, O]``
        for target "last" or ``[T, N, O]`` for "every"; the final state of every layer and
        direction), never dropping. Asked for once per model, only when
        :attr:`forward_features` holds every feature of ``model_cfg``; ``lengths`` is passed
        only when it holds ``"lengths"``. None (the default): the core composes the layers."""
        return None


@dataclass(frozen=True)
class TableSpec:
    """A config table a plugin reads (``[tracking]``, say): its name and the options it may
    hold, validated like the core's tables (unknown keys named with the closest one, types,
    ranges, defaults filled in). The values reach lifecycle hooks as
    ``run.experiment.tables[name]``, and the run's config.toml records the table when the
    experiment sets it."""

    name: str
    options: tuple[Option, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class BackendSpec:
    """A backend a plugin provides. ``load`` imports heavy dependencies only when called;
    ``unavailable`` returns why the backend cannot run here, or None when it can."""

    name: str
    load: Callable[[], Backend]
    description: str = ""
    unavailable: Callable[[], str | None] = lambda: None
