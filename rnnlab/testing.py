"""Checks a plugin author runs from their own pytest suite; the built-in plugins use them too.

    from rnnlab.testing import check_backend, check_task
    def test_my_backend():
        check_backend(MyBackend())
    def test_my_task():
        check_task(MY_TASK_SPEC, {"some_option": 3})

Each check raises AssertionError with a message saying what disagreed and by how much. A backend
that declares the ``"lengths"`` feature is also checked with variable-length sequences (and with
garbage in their padding); one that does not must be refused them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import product
from pathlib import Path

import numpy as np

from .cells import cell_spec
from .errors import PluginError
from .experiment.config import validate_table
from .experiment.schema import ModelConfig, TrainConfig
from .nn.lengths import FEATURE, inert_padding, valid_steps
from .nn.model import Model, Shape, init_params
from .nn.optim import Optimizer
from .registry.manager import Registry
from .specs import Dataset, Demo, Split, Task, TaskContext, TaskSpec
from .training.datacheck import dataset_problem
from .training.loop import reference_epoch
from .training.session import SPLITS, EpochPlan, cast, generators

REFERENCE = "numpy"  # the reference backend every other backend is checked against
CASES = (("mse", "last"), ("xent", "every"))  # loss kinds x where targets apply


def reference_backend():
    """The NumPy reference backend, found through the plugin registry like any backend."""
    return Registry().backend(REFERENCE).load()


SIZES = {"T": 5, "N": 3, "I": 3, "O": 2}
"""The sizes :func:`problem` draws by default: steps, sequences, inputs, outputs."""


def sizes_of(sizes: dict[str, int]) -> tuple[int, int, int, int]:
    """``T, N, I, O`` from keywords among :data:`SIZES`, the rest at their defaults."""
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        raise TypeError(f"unexpected size(s) {unknown}; the sizes are {list(SIZES)}")
    merged = {**SIZES, **sizes}
    return merged["T"], merged["N"], merged["I"], merged["O"]


def problem(cfg: ModelConfig, loss: str, target: str, *, seed=0, cell=None, **sizes):
    """Small random parameters, inputs and targets for one configuration (``cell``: the spec of
    ``cfg.cell`` when a plugin registers it); ``sizes`` among ``T``, ``N``, ``I``, ``O``
    (:data:`SIZES`)."""
    return sized_problem(cfg, loss, target, seed=seed, cell=cell, **sizes)[:3]


def sized_problem(
    cfg: ModelConfig, loss: str, target: str, *, seed=0, cell=None, lengths=False, **sizes
):
    """:func:`problem` and, fourth, random sequence lengths when ``lengths`` is true (the first
    sequence full length, the second one step long; random values in the padding), else None.
    The first three items are those of :func:`problem` with the same arguments."""
    T, N, I, O = sizes_of(sizes)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, Shape(I, O), rng, cell)
    x = rng.normal(size=(T, N, I)).astype(cfg.dtype)
    lead = (N,) if target == "last" else (T, N)
    y = (
        rng.normal(size=(*lead, O)).astype(cfg.dtype)
        if loss == "mse"
        else rng.integers(0, O, size=lead)
    )
    return params, x, y, (random_lengths(rng, T, N) if lengths else None)


def random_lengths(rng: np.random.Generator, T: int, N: int) -> np.ndarray:
    """int64 ``[N]`` lengths in ``[1, T]``: the first ``T``, the second 1, the rest random."""
    lengths = rng.integers(1, T + 1, size=N).astype(np.int64)
    lengths[0] = T
    if N > 1:
        lengths[1] = 1
    return lengths


def fill_padding(x: np.ndarray, y: np.ndarray, lengths: np.ndarray, target: str, value):
    """Copies of ``x`` (and of ``y``, target "every") with ``value`` at every padded step."""
    pad = ~valid_steps(lengths, x.shape[0])
    x = x.copy()
    x[pad] = value
    y = y.copy()
    if target == "every":
        y[pad] = value if np.issubdtype(y.dtype, np.floating) else 10**6
    return x, y


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||), over a whole tensor (0 when both are 0)."""
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def gradient_errors(
    backend,
    cfg: ModelConfig,
    loss: str,
    target: str,
    *,
    eps=1e-5,
    seed=0,
    cells=None,
    lengths=False,
) -> dict[str, float]:
    """Relative error of every parameter's analytic gradient against central differences
    (``lengths``: with variable-length sequences, see :func:`sized_problem`)."""
    cfg, cell = replace(cfg, dtype="float64"), cell_spec(cfg.cell, cells)
    params, x, y, lens = sized_problem(cfg, loss, target, seed=seed, cell=cell, lengths=lengths)
    model = Model(cfg, backend, params, cell)
    masks = fixed_masks(model, x.shape[:2], seed)
    _, grads, _ = model.loss_and_grads(x, y, loss, target, lengths=lens, masks=masks)
    errors = {}
    for name, p in params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + eps
            plus = model.loss(x, y, loss, target, lengths=lens, masks=masks)
            p[i] = keep - eps
            minus = model.loss(x, y, loss, target, lengths=lens, masks=masks)
            p[i] = keep
            numeric[i] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(grads[name], numeric)
    return errors


def fixed_masks(model: Model, shape, seed: int = 0):
    """Dropout masks for a problem of ``shape = (T, N)`` drawn from a generator seeded with
    ``seed`` (None when the model does not drop), so that a check can hold them fixed."""
    return model.dropout_masks(np.random.default_rng(seed), *shape)


def backend_cells(backend, cells=None, only=None) -> tuple[str, ...]:
    """The cells ``backend`` runs: those it declares and, for a backend that runs cells from
    their specs (``runs_cell``: the reference runs any spec with numpy kernels), those of
    ``cells`` it accepts; only the names in ``only`` when given."""
    runs_cell = getattr(backend, "runs_cell", None)
    if runs_cell is not None:
        for spec in (cells or {}).values():
            runs_cell(spec)
    names = tuple(backend.cells)
    if only is not None:
        missing = [c for c in only if c not in names]
        assert not missing, f"{backend.name}: does not run cell(s) {missing} (runs: {names})"
        names = tuple(c for c in names if c in only)
    return names


def configs(backend, *, layers=(1, 2), cells=None, only=None):
    """Every configuration a backend declares: cell x the cell's nonlinearities x layer count,
    and a bidirectional stack of the most layers with dropout between them (the core composes
    directions and dropout from the backend's kernels, so every backend is checked on them).
    ``cells`` maps names to :class:`rnnlab.cells.CellSpec` for cells a plugin registers;
    ``only`` restricts the check to the cells it names."""
    for cell in backend_cells(backend, cells, only):
        for nonlinearity in cell_spec(cell, cells).nonlinearities:
            for n in layers:
                yield ModelConfig(cell=cell, hidden_size=4, layers=n, nonlinearity=nonlinearity)
            yield ModelConfig(
                cell=cell,
                hidden_size=4,
                layers=max(layers),
                nonlinearity=nonlinearity,
                bidirectional=True,
                dropout=0.5,
            )


def length_cases(backend) -> tuple[bool, ...]:
    """Full-length sequences, and variable lengths when the backend declares them."""
    return (False, True) if FEATURE in getattr(backend, "features", ()) else (False,)


def check_gradients(backend, *, rtol=1e-7, cells=None, only=None) -> None:
    """Analytic gradients match float64 central differences for every declared configuration
    (and with variable-length sequences, when the backend declares the feature).
    ``cells``: specs of cells a plugin registers (``Registry.cells``), by name; ``only``: the
    names of the cells to check (default: every cell the backend runs)."""
    for cfg in configs(backend, cells=cells, only=only):
        for loss, target in CASES:
            for lengths in length_cases(backend):
                errors = gradient_errors(backend, cfg, loss, target, cells=cells, lengths=lengths)
                bad = {k: v for k, v in errors.items() if v > rtol}
                with_lengths = " with lengths" if lengths else ""
                assert not bad, (
                    f"{backend.name}: gradients disagree with finite differences "
                    f"for {cfg} {loss}/{target}{with_lengths}: {bad} "
                    f"(tolerance {rtol})"
                )


def check_agreement(
    backend, reference=None, *, rtol64=1e-9, rtol32=1e-4, cells=None, only=None
) -> None:
    """Outputs, final states and gradients match the reference backend for every declared
    cell, layer count and dtype (float32 within ``rtol32``), and with variable-length sequences
    when the backend declares the feature."""
    reference = reference if reference is not None else reference_backend()
    for cfg in configs(backend, cells=cells, only=only):
        cell = cell_spec(cfg.cell, cells)
        for dtype, (loss, target), lengths in product(backend.dtypes, CASES, length_cases(backend)):
            rtol = rtol64 if dtype == "float64" else rtol32
            c = replace(cfg, dtype=dtype)
            params, x, y, lens = sized_problem(
                c, loss, target, T=7, N=4, cell=cell, lengths=lengths
            )
            got = Model(c, backend, {k: v.copy() for k, v in params.items()}, cell)
            want = Model(c, reference, params, cell)
            masks = fixed_masks(want, x.shape[:2])  # the same dropout masks for both
            (l1, g1, s1), (l2, g2, s2) = (
                m.loss_and_grads(x, y, loss, target, lengths=lens, masks=masks) for m in (got, want)
            )
            o1, o2 = (m.predict(x, "every", lengths=lens) for m in (got, want))
            pairs = {
                "loss": (np.array(l1), np.array(l2)),
                "outputs": (o1, o2),
                **{f"grad {k}": (g1[k], g2[k]) for k in g2},
                **{
                    f"final state {i}": (np.stack(a), np.stack(b))
                    for i, (a, b) in enumerate(zip(s1, s2, strict=True))
                },
            }
            for what, (a, b) in pairs.items():
                assert a.dtype == b.dtype, f"{backend.name}: {what} has dtype {a.dtype}"
                err = relative_error(a, b)
                assert err <= rtol, (
                    f"{backend.name} vs {reference.name}: {what} differs by "
                    f"{err:.2e} relative for {c} {loss}/{target}"
                    f"{' with lengths' if lengths else ''} (tolerance {rtol})"
                )


def padding_differences(
    backend, *, value=1e6, steps=3, seed=0, cells=None, only=None
) -> dict[str, float]:
    """How much garbage in the padding changes anything, for every declared configuration in
    float64: the largest relative difference, with padding 0 and with ``value`` in ``x`` (and
    in every-step targets; an out-of-range class index for xent), of the loss, every gradient,
    the outputs at valid steps and the final states, and of every parameter after ``steps``
    Adam steps of the core loop. Keys: ``"loss"``, ``"grads"``, ``"outputs"``, ``"state"``,
    ``"params"``."""
    worst = dict.fromkeys(("loss", "grads", "outputs", "state", "params"), 0.0)
    cfg_train = TrainConfig(batch_size=2, learning_rate=0.05)
    for cfg in configs(backend, cells=cells, only=only):
        cell = cell_spec(cfg.cell, cells)
        for loss, target in CASES:
            c = replace(cfg, dtype="float64")
            params, x, y, lens = sized_problem(
                c, loss, target, T=7, N=4, seed=seed, cell=cell, lengths=True
            )
            runs = []
            for fill in (0.0, value):
                xf, yf = fill_padding(x, y, lens, target, fill)
                model = Model(c, backend, {k: v.copy() for k, v in params.items()}, cell)
                value_, grads, final = model.loss_and_grads(xf, yf, loss, target, lengths=lens)
                valid = valid_steps(lens, x.shape[0])
                outputs = model.predict(xf, "every", lengths=lens)[valid]
                plan = EpochPlan(c, cfg_train, loss, target)
                optimizer = Optimizer(cfg_train, model.params)
                order = np.arange(len(lens))
                masks = np.random.default_rng(seed)  # the same dropout masks for both fills
                for _ in range(steps):
                    reference_epoch(
                        model, optimizer, plan, Split(xf, yf, lens), order, 0.05, dropout_rng=masks
                    )
                runs.append((value_, grads, outputs, final, model.params))
            (l1, g1, o1, s1, p1), (l2, g2, o2, s2, p2) = runs
            found = {
                "loss": relative_error(np.array(l1), np.array(l2)),
                "grads": max(relative_error(g1[k], g2[k]) for k in g1),
                "outputs": relative_error(o1, o2),
                "state": max(
                    relative_error(np.stack(a), np.stack(b)) for a, b in zip(s1, s2, strict=True)
                ),
                "params": max(relative_error(p1[k], p2[k]) for k in p1),
            }
            worst = {k: max(worst[k], found[k]) for k in worst}
    return worst


def check_padding_inert(backend, *, rtol=1e-12, cells=None, only=None) -> None:
    """Values in the padding change no loss, gradient, output, final state or trained
    parameter (see :func:`padding_differences`) beyond ``rtol`` relative."""
    found = padding_differences(backend, cells=cells, only=only)
    bad = {k: v for k, v in found.items() if not v <= rtol}
    assert not bad, (
        f"{backend.name}: garbage in the padding changes {bad} relative "
        f"(tolerance {rtol}); kernels must select valid steps (np.where, "
        f"branches), never multiply by a 0/1 mask"
    )


def check_refuses_lengths(backend, *, cells=None, only=None) -> None:
    """A backend without the ``"lengths"`` feature is refused variable-length sequences with
    a clear error naming it, instead of silently running the padding."""
    cfg = next(configs(backend, cells=cells, only=only))
    cell = cell_spec(cfg.cell, cells)
    params, x, y, lens = sized_problem(cfg, "mse", "last", cell=cell, lengths=True)
    try:
        Model(cfg, backend, params, cell).loss_and_grads(x, y, "mse", "last", lengths=lens)
    except PluginError as exc:
        assert repr(backend.name) in str(exc), f"the refusal does not name the backend: {exc}"
        return
    raise AssertionError(
        f"{backend.name}: a backend without the {FEATURE!r} feature was given "
        f"variable-length sequences and not refused"
    )


def check_backend(backend, reference=None, *, cells=None, only=None) -> None:
    """Everything a backend must satisfy: exact gradients and agreement with the reference,
    with variable-length sequences and inert padding when it declares the ``"lengths"``
    feature, and a clear refusal of them when it does not. ``cells``: specs of the cells a
    plugin registers (``Registry.cells``), by name; ``only``: the names of the cells to check
    (default: every cell the backend runs, a plugin's cells with numpy kernels included on
    the reference backend)."""
    check_gradients(backend, cells=cells, only=only)
    check_agreement(backend, reference, cells=cells, only=only)
    if FEATURE in getattr(backend, "features", ()):
        check_padding_inert(backend, cells=cells, only=only)
    else:
        check_refuses_lengths(backend, cells=cells, only=only)


# -- tasks -----------------------------------------------------------------------------------
def task_options(spec: TaskSpec, options: dict | None) -> dict:
    """``options`` validated against the task's declared options, with defaults filled in."""
    return validate_table(
        dict(options or {}), spec.options, table="task", source=f"check_task({spec.name!r})"
    )


def make_task(task, options: dict | None = None, context: TaskContext | None = None) -> Task:
    """A task instance from a :class:`TaskSpec` (options validated, defaults filled in) or from
    a bare factory ``(options, context) -> Task`` (options passed as given)."""
    context = context if context is not None else TaskContext(Path.cwd())
    if isinstance(task, TaskSpec):
        return task.factory(task_options(task, options), context)
    return task(dict(options or {}), context)


def build_dataset(task: Task, seed: int) -> Dataset:
    """The dataset a run with ``seed`` would see (the same generator stream as ``rnnlab run``)."""
    return task.build(generators(seed)["data"])


def check_dataset(dataset: Dataset, label: str = "task") -> None:
    """The dataset declares a valid loss and target, and every split's arrays have the shapes
    and dtypes those declarations imply (see :mod:`rnnlab.specs`); what every run checks."""
    problem = dataset_problem(dataset)
    assert problem is None, f"{label}: {problem}"


def _examples(split: Split, target: str) -> list[bytes]:
    """One byte string per example (its input column and its target, and its valid steps only
    when the split has lengths), to compare splits."""
    ys = split.y if target == "last" else np.moveaxis(split.y, 1, 0)
    if split.lengths is None:
        return [split.x[:, i].tobytes() + ys[i].tobytes() for i in range(len(split))]
    out = []
    for i, n in enumerate(split.lengths):
        y = ys[i] if target == "last" else ys[i][:n]
        out.append(split.x[:n, i].tobytes() + y.tobytes() + f"/{n}".encode())
    return out


def check_splits(
    a: Dataset, b: Dataset, label: str = "task", *, max_shared: float | None = None
) -> None:
    """``a`` and ``b`` (built twice from one seed) are identical, and the splits of ``a`` are
    disjoint: no two share memory, and at most ``max_shared`` of the val or test examples also
    appear, input and target alike, in train. With ``max_shared=None`` that share must be 0 when
    train holds no repeated example, and is not checked when it does (data whose examples
    genuinely repeat, such as short bit strings, cannot tell a leak from a repeat by content)."""
    assert set(a.splits) == set(b.splits), f"{label}: split names differ between two builds"
    for name in a.splits:
        for arr in ("x", "y", "lengths"):
            same = np.array_equal(getattr(a.splits[name], arr), getattr(b.splits[name], arr))
            assert same, f"{label}: split {name!r} {arr} differs between two builds with one seed"
    names = list(a.splits)
    for i, one in enumerate(names):
        for other in names[i + 1 :]:
            p, q = a.splits[one], a.splits[other]
            shared = any(np.shares_memory(u, v) for u in (p.x, p.y) for v in (q.x, q.y))
            assert not shared, f"{label}: splits {one!r} and {other!r} share memory"
    train = _examples(a.splits["train"], a.target)
    if max_shared is None:
        if len(set(train)) < len(train):
            return
        max_shared = 0.0
    train = set(train)
    for name in ("val", "test"):
        held_out = _examples(a.splits[name], a.target)
        shared = sum(e in train for e in held_out) / max(len(held_out), 1)
        assert shared <= max_shared, (
            f"{label}: {shared:.0%} of the {name} examples also appear "
            f"in train (allowed: {max_shared:.0%})"
        )


def check_metrics(task: Task, model: Model, dataset: Dataset, label: str = "task") -> None:
    """The task's metrics accept the model on every split and return finite numbers; its demo,
    when it has one, is JSON-ready."""
    for name in SPLITS:
        metrics = task.metrics(model, dataset, name)
        assert isinstance(metrics, dict), f"{label}: metrics() must return a dict, got {metrics!r}"
        for key, value in metrics.items():
            assert isinstance(key, str), f"{label}: metric name {key!r} is not a string"
            assert np.isfinite(float(value)), f"{label}: metric {key!r} on {name} is {value}"
    demo = task.demo(model, dataset, generators(0)["demo"])
    if demo is not None:
        assert isinstance(demo, Demo), f"{label}: demo() must return a Demo or None"
        json.dumps(demo.to_json())


def train_briefly(
    model: Model,
    dataset: Dataset,
    *,
    epochs: int,
    max_examples: int,
    max_steps: int = 512,
    seed: int = 0,
) -> tuple[float, float]:
    """Train on (at most ``max_examples`` of) the train split with the core loop; return the
    train loss before and after. A stateful dataset's train stream is cut to its first
    ``max_steps`` steps and trained as one sequence (full BPTT)."""
    s = dataset.splits["train"]
    keep = np.arange(min(len(s), max_examples))
    y = s.y[keep] if dataset.target == "last" else s.y[:, keep]
    split = Split(s.x[:, keep], y, None if s.lengths is None else s.lengths[keep])
    if dataset.chunk_length:
        split = Split(split.x[:max_steps], split.y[:max_steps])
    cfg = TrainConfig(epochs=epochs, batch_size=32, learning_rate=0.01)
    plan = EpochPlan(model.cfg, cfg, dataset.loss, dataset.target)
    optimizer = Optimizer(cfg, model.params)
    shuffle = np.random.default_rng(seed)
    lengths = split.lengths
    before = model.loss(split.x, split.y, dataset.loss, dataset.target, lengths=lengths)
    for _ in range(epochs):
        reference_epoch(
            model,
            optimizer,
            plan,
            split,
            shuffle.permutation(len(split)),
            0.01,
            dropout_rng=shuffle,
        )
    return before, model.loss(split.x, split.y, dataset.loss, dataset.target, lengths=lengths)


TASK_LIMITS = {"hidden_size": 8, "epochs": 10, "max_examples": 256, "max_shared": None}
"""What :func:`check_task` trains and tolerates, by default."""


def limits_of(limits: dict) -> tuple:
    """``hidden_size, epochs, max_examples, max_shared`` from keywords among
    :data:`TASK_LIMITS`, the rest at their defaults."""
    unknown = sorted(set(limits) - set(TASK_LIMITS))
    if unknown:
        raise TypeError(f"unexpected keyword(s) {unknown}; the limits are {list(TASK_LIMITS)}")
    merged = {**TASK_LIMITS, **limits}
    return merged["hidden_size"], merged["epochs"], merged["max_examples"], merged["max_shared"]


def check_task(
    task,
    options: dict | None = None,
    *,
    seeds=(0, 1),
    backend=None,
    context: TaskContext | None = None,
    cell: str | None = None,
    **limits,
) -> None:
    """Everything a task must satisfy, for each seed in ``seeds``:

    - two builds with one seed give identical splits; the splits share no memory, and val/test
      share no example with train (see :func:`check_splits` for ``max_shared``);
    - shapes and dtypes match the declared input_size, output_size, loss and target;
    - its metrics (and demo) accept a model's output;
    - a short training run (Adam, ``epochs`` passes over at most ``max_examples`` training
      examples) lowers the training loss.

    ``task`` is a :class:`TaskSpec` (``options`` are validated against its declared options and
    defaults filled in) or a factory ``(options, context) -> Task`` (``options`` passed as they
    are). ``backend`` defaults to the NumPy reference. ``limits`` are among
    :data:`TASK_LIMITS`: ``hidden_size`` of the model trained, ``epochs``, ``max_examples`` and
    ``max_shared``.
    """
    hidden_size, epochs, max_examples, max_shared = limits_of(limits)
    backend = backend if backend is not None else reference_backend()
    label = f"task {task.name!r}" if isinstance(task, TaskSpec) else f"task {task!r}"
    for seed in seeds:
        where = f"{label} (seed {seed})"
        first = build_dataset(make_task(task, options, context), seed)
        second = build_dataset(make_task(task, options, context), seed)
        check_dataset(first, where)
        check_splits(first, second, where, max_shared=max_shared)
        dataset = replace(
            first,
            splits={
                k: inert_padding(cast(v, np.dtype("float64")), first.target)
                for k, v in first.splits.items()
            },
        )
        cfg = ModelConfig(cell=cell or backend.cells[0], hidden_size=hidden_size)
        params = init_params(
            cfg, Shape(dataset.input_size, dataset.output_size), generators(seed)["init"]
        )
        model = Model(cfg, backend, params)
        model.target = dataset.target
        check_metrics(make_task(task, options, context), model, dataset, where)
        before, after = train_briefly(
            model, dataset, epochs=epochs, max_examples=max_examples, seed=seed
        )
        assert after < before, (
            f"{where}: {epochs} epochs of training did not lower the train "
            f"loss ({before:.6g} -> {after:.6g})"
        )


def check_training_agreement(
    backend_name: str, experiment, *, rtol: float | None = None, sets=(), registry=None
) -> dict[str, float]:
    """A whole training run on ``backend_name`` matches the same run on the reference backend
    by the rule of ``rnnlab compare``: per-epoch losses, final metrics and final parameters
    within ``rtol`` relative (default: :data:`rnnlab.training.compare.TOLERANCE` for the
    experiment's dtype), or within what rounding alone explains where the training amplifies
    rounding (:class:`rnnlab.training.compare.Tolerance`, measured by rerunning the reference
    with its learning rate one ulp larger).

    ``experiment`` is an :class:`rnnlab.experiment.config.Experiment` or the path of an experiment
    file;
    ``sets`` are ``--set``-style overrides (e.g. ``("train.epochs=3",)``) applied to a file.
    Returns the differences found.
    """
    from .experiment.config import load_experiment_file
    from .training.compare import (
        TOLERANCE,
        Tolerance,
        differences,
        nudged,
        train_once,
        with_backend,
    )

    if registry is None:
        registry = Registry()
    if not hasattr(experiment, "train"):
        experiment = load_experiment_file(Path(experiment), registry, sets)
    rtol = rtol if rtol is not None else TOLERANCE[experiment.model.dtype]
    reference = with_backend(experiment, REFERENCE)
    want = train_once(reference, registry)
    got = train_once(with_backend(experiment, backend_name), registry)
    diffs = differences(want, got)
    if max(diffs.values()) <= rtol:  # within the dtype's tolerance: rounding needs no measuring
        return diffs
    tolerance = Tolerance.measure(want, train_once(nudged(reference), registry), rtol)
    excess = tolerance.excess(want, got)
    assert excess <= 1.0, (
        f"{backend_name} vs {REFERENCE}: training run of "
        f"{experiment.experiment.name!r} ({experiment.model.dtype}) differs by "
        f"{ {k: float(f'{v:.3g}') for k, v in diffs.items()} } relative, {excess:.3g} times "
        f"what is allowed (tolerance {rtol:g}, or {tolerance.to_dict()['rounding_factor']:g}x "
        f"the drift a one-ulp change of the learning rate causes: {tolerance.drift})"
    )
    return diffs
