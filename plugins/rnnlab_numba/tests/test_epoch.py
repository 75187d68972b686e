"""The numba backend's fused epoch for every cell against the core's reference loop on the NumPy
backend: cells x layers x losses x targets x lengths x optimizers x clipping, and the same bytes
whatever the thread count.

Only the cell and the dtype change a compiled signature (everything else is a runtime value),
so these cases cost three cells x two dtypes of compilation, plus the threaded kernel.
"""

import itertools
import os

import numpy as np
import pytest

from rnnlab.cells import BUILTIN_CELLS
from rnnlab.experiment.schema import ModelConfig, TrainConfig
from rnnlab.nn.model import Model
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.testing import reference_backend
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan
from tests.support.epoch_checks import assert_same_state, twin_params

pytest.importorskip("numba")

CELLS = ["rnn", "lstm", "gru"]
OPTIMIZERS = [
    dict(optimizer="sgd", momentum=0.9, weight_decay=0.01),
    dict(optimizer="adam"),
    dict(optimizer="adagrad", weight_decay=0.1),
]
CLIPS = [
    dict(grad_clip="none"),
    dict(grad_clip="norm", grad_clip_value=0.05),
    dict(grad_clip="value", grad_clip_value=0.01),
]


def cases():
    """Every cell with every (layers, loss, target, lengths); optimizer and clipping rotate so
    that each cell meets each of them with both losses and targets."""
    out = []
    combos = itertools.product([1, 2], ["mse", "xent"], ["last", "every"], [False, True])
    for i, (layers, loss, target, lengths) in enumerate(combos):
        for j, cell in enumerate(CELLS):
            train = {**OPTIMIZERS[(i + j) % 3], **CLIPS[(i // 3 + j) % 3]}
            out.append((cell, layers, loss, target, lengths, train))
    return out


@pytest.fixture(scope="module")
def backend():
    return Registry().backend("numba").load()


def make_plan(cell, layers, loss, target, lengths, train, dtype, batch_size=4, hidden=5, **extra):
    cfg = ModelConfig(cell=cell, layers=layers, hidden_size=hidden, dtype=dtype)
    tr = TrainConfig(batch_size=batch_size, learning_rate=0.05, **train, **extra)
    return EpochPlan(cfg, tr, loss, target, lengths=lengths)


def make_data(dtype, loss, target, lengths, *, T=6, N=11, n_in=3, n_out=3, seed=3):
    """Inputs, targets and (optionally) lengths, with padding that must never reach a result."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, T + 1, size=N) if lengths else None
    x = rng.normal(size=(T, N, n_in)).astype(dtype)
    lead = (N,) if target == "last" else (T, N)
    if loss == "mse":
        y = rng.normal(size=(*lead, n_out)).astype(dtype)
    else:
        y = rng.integers(0, n_out, size=lead)
    if lens is not None:
        x[np.arange(T)[:, None] >= lens[None, :]] = 1e6
    return rng, Split(x, y, lens), n_in, n_out


def assert_epoch_matches_the_reference(backend, plan, loss, target, lengths):
    """Two float64 epochs of ``plan`` on numba's fused epoch and on the reference: the same
    losses to 1e-10, six optimizer steps each, the same parameters and optimizer state."""
    rng, split, n_in, n_out = make_data("float64", loss, target, lengths)
    (got, params, opt), (want, ref_params, ref_opt) = run_both(
        backend, plan, split, rng, n_in, n_out
    )
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-10)
    assert opt.steps == ref_opt.steps == 6
    assert_same_state(params, opt, ref_params, ref_opt, 1e-10)


def run_both(backend, plan, split, rng, n_in, n_out, epochs=2):
    """Two epochs of the fused runner and of the reference loop from the same start: both
    trainings' losses and final states."""
    params, opt, ref_params, ref_opt = twin_params(plan, n_in, n_out, rng)
    runner = epoch_runner(backend, plan)
    assert runner is not None, plan.uncovered(backend.epoch_features)
    ref_model = Model(plan.model, reference_backend(), ref_params)
    extra = {} if split.lengths is None else {"lengths": split.lengths}
    got, want = [], []
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(len(split.x[0]))
        got.append(runner(params, opt, split.x, split.y, order, 0.05, **extra))
        want.append(reference_epoch(ref_model, ref_opt, plan, split, order, 0.05))
    return (got, params, opt), (want, ref_params, ref_opt)


@pytest.mark.parametrize("cell,layers,loss,target,lengths,train", cases())
def test_fused_epoch_matches_the_reference_float64(
    backend, cell, layers, loss, target, lengths, train
):
    plan = make_plan(cell, layers, loss, target, lengths, train, "float64")
    assert_epoch_matches_the_reference(backend, plan, loss, target, lengths)


@pytest.mark.parametrize("cell,layers,loss,target,lengths,train", cases()[::5])
def test_fused_epoch_matches_the_reference_float32(
    backend, cell, layers, loss, target, lengths, train
):
    plan = make_plan(cell, layers, loss, target, lengths, train, "float32")
    rng, split, n_in, n_out = make_data("float32", loss, target, lengths)
    (got, params, opt), (want, ref_params, ref_opt) = run_both(
        backend, plan, split, rng, n_in, n_out
    )
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=1e-4)
    assert_same_state(params, opt, ref_params, ref_opt, 1e-4)


def test_every_cell_is_declared(backend):
    assert {"cell=rnn", "cell=lstm", "cell=gru"} <= backend.epoch_features
    # stateful epochs and dropout: plugins/rnnlab_numba/tests/test_stateful.py; bidirectional:
    # plugins/rnnlab_numba/tests/test_bidirectional.py
    assert {"chunk_length", "dropout", "bidirectional"} <= backend.epoch_features


CHUNK_ROWS = {"rnn": 8, "lstm": 4, "gru": 4}  # a batch of 16 rows at H = 24, two layers


# two threads compile a signature of their own per cell: rnn's by default, the others with -m
@pytest.mark.parametrize(
    "cell",
    [c if c == "rnn" else pytest.param(c, marks=pytest.mark.exhaustive) for c in BUILTIN_CELLS],
)
def test_thread_count_changes_no_bit(backend, cell):
    """Batches of 16 rows big enough to split into chunks (layout.chunk_rows: two of 8 rows for
    rnn, four of 4 for lstm and gru, several for every cell), with lengths: one thread and two
    give the same bytes (losses, parameters, optimizer slots)."""
    runs = []
    for threads in (1, 2):
        train = dict(optimizer="adam", grad_clip="norm", grad_clip_value=0.5)
        plan = make_plan(
            cell, 2, "mse", "every", True, train, "float64", 16, hidden=24, threads=threads
        )
        rng, split, n_in, n_out = make_data("float64", "mse", "every", True, T=20, N=37)
        params, opt, _, _ = twin_params(plan, n_in, n_out, rng)
        runner = backend.epoch_runner(plan)
        losses = [
            runner(params, opt, split.x, split.y, np.random.default_rng(e).permutation(37), 0.1,
                   lengths=split.lengths)
            for e in range(2)
        ]  # fmt: skip
        rows = runner.settings.chunk_rows
        assert rows == CHUNK_ROWS[cell] if cell in CHUNK_ROWS else rows < 16
        runs.append(
            [*losses, *params.values(), *(s for v in opt.slots.values() for s in v.values())]
        )
    for a, b in zip(*runs, strict=True):
        assert a.tobytes() == b.tobytes()
    from numba import config

    from rnnlab_numba import epoch

    if config.NUMBA_NUM_THREADS > 1 and os.path.isdir("/proc/self/task"):
        # the first two-thread epoch found numba's workers (busy_elsewhere does not count them)
        assert epoch.POOL and epoch.POOL <= set(os.listdir("/proc/self/task"))


def test_this_process_other_running_threads_hold_a_core(tmp_path, monkeypatch):
    """Three tasks running on the machine (a /proc written here): the caller, numba's worker
    (spinning after a parallel region, it is ours to use) and another thread of this process
    (OpenBLAS's workers spin about 0.1 s after a NumPy product; two numba threads next to one
    took 20x longer). One core is taken elsewhere, so the automatic choice stays on one."""
    from rnnlab_numba import epoch

    (tmp_path / "loadavg").write_text("0.50 0.40 0.30 3/120 4242\n")
    for tid, state in (("100", "R"), ("101", "R"), ("102", "R"), ("103", "S")):
        task = tmp_path / "self" / "task" / tid
        task.mkdir(parents=True)
        task.joinpath("stat").write_text(f"{tid} (python (x)) {state} 1 2 3 4\n")
    monkeypatch.setattr(epoch, "POOL", {"101", "103", "999"})  # 999: a worker that has gone
    assert epoch.busy_elsewhere(str(tmp_path)) == 1.0
    monkeypatch.setattr(epoch, "POOL", set())  # numba's workers unknown: they count as busy
    assert epoch.busy_elsewhere(str(tmp_path)) == 2.0
    (tmp_path / "loadavg").write_text("0.50 0.40 0.30 1/120 4242\n")
    assert epoch.busy_elsewhere(str(tmp_path)) == 0.0


def test_small_batches_are_one_chunk(backend):
    """Below layout.CHUNK_WORK a batch is one chunk (a second thread would not pay), so one
    thread does not pay for chunks it cannot share; the rule reads the size, never threads."""
    from rnnlab_numba.layout import CHUNK_WORK, batch_work, chunk_rows

    assert chunk_rows(32, batch_work(32, 10, 1, 16, 1)) == 32
    assert chunk_rows(32, batch_work(32, 10, 1, 32, 1)) == 16  # the article's: two chunks
    assert chunk_rows(16, 4 * CHUNK_WORK) == 4
    assert chunk_rows(1, 10**9) == 1
    plan = make_plan("rnn", 1, "mse", "last", False, {}, "float64", 8, threads=2)
    rng, split, n_in, n_out = make_data("float64", "mse", "last", False)
    params, opt, _, _ = twin_params(plan, n_in, n_out, rng)
    runner = backend.epoch_runner(plan)
    runner(params, opt, split.x, split.y, np.arange(11), 0.05)
    assert runner.settings.chunk_rows == 8


def test_subnormals_flush_inside_a_chunk_only(backend):
    """fpenv: a chunk computes with subnormals flushed to zero (float32 BPTT fades into them,
    which made float32 epochs slower than float64), and the epoch leaves the caller's
    floating-point state as it found it."""
    import platform

    from numba import njit

    from rnnlab_numba.fpenv import flush_subnormals, restore

    @njit
    def products(a, out):
        old = flush_subnormals()
        out[0] = a[0] * a[1]
        restore(old)
        out[1] = a[2] * a[3]

    tiny = np.float32(1e-20)
    out = np.ones(2, np.float32)
    products(np.full(4, tiny), out)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert out[0] == 0.0
    assert out[1] != 0.0  # 1e-40: a float32 subnormal, kept once restored
    plan = make_plan("rnn", 1, "mse", "last", False, {}, "float32")
    rng, split, n_in, n_out = make_data("float32", "mse", "last", False)
    params, opt, _, _ = twin_params(plan, n_in, n_out, rng)
    backend.epoch_runner(plan)(params, opt, split.x, split.y, np.arange(11), 0.05)
    assert tiny * tiny != 0.0  # NumPy, after the epoch: no flushing left behind
