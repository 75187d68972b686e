"""Variable-length sequences (Split.lengths): PyTorch's packed semantics in the NumPy reference
and the model, inert padding, the core's checks and refusals, trimmed and bucketed batches,
resume, and the conformance kit."""

from __future__ import annotations

import itertools
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.cli import main
from rnnlab.cli.common import load_experiment
from rnnlab.errors import PluginError, RunInterrupted
from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.lengths import batch, bucketed_order, partial_batch_start, valid_steps
from rnnlab.nn.model import Model, Shape, init_params, loss_and_grad
from rnnlab.nn.optim import Optimizer
from rnnlab.specs import Dataset, Split
from rnnlab.store.checkpoint import config_differences, data_digest, fingerprint
from rnnlab.testing import (
    check_agreement,
    check_backend,
    check_padding_inert,
    check_refuses_lengths,
    check_task,
    check_training_agreement,
    configs,
    gradient_errors,
    padding_differences,
    reference_backend,
)
from rnnlab.training import loop as train
from rnnlab.training.loop import epoch_order, reference_epoch, split_loss
from rnnlab.training.run import resume_experiment, run_experiment
from rnnlab.training.session import EpochPlan, prepare
from rnnlab_numpy.backend import NumpyBackend
from tests.support.paths import SUPPORT
from tests.support.tiny_runs import assert_same_outcome

PLUGIN = str(SUPPORT / "varlen_task.py")
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
CASES = [("mse", "last"), ("xent", "every"), ("mse", "every"), ("xent", "last")]

EXPERIMENT = """\
[experiment]
name = "varlen"
seed = 2

[task]
name = "varlen"
target = "{target}"

[model]
cell = "{cell}"
hidden_size = 6
layers = 2

[train]
epochs = 3
batch_size = 16
learning_rate = 0.02
"""


def experiment(folder: Path, *sets: str, target="last", cell="gru"):
    path = Path(folder) / "varlen.toml"
    path.write_text(EXPERIMENT.format(target=target, cell=cell))
    return load_experiment(str(path), list(sets), [PLUGIN])


def model_for(cell, nonlinearity="tanh", layers=2, *, I=3, O=2, seed=0):
    cfg = ModelConfig(cell=cell, hidden_size=5, layers=layers, nonlinearity=nonlinearity)
    params = init_params(cfg, Shape(I, O), np.random.default_rng(seed))
    return Model(cfg, NumpyBackend(), params)


def data(rng, T, lengths, loss, target, *, I=3, O=2):
    N = len(lengths)
    x = rng.normal(size=(T, N, I))
    lead = (N,) if target == "last" else (T, N)
    y = rng.normal(size=(*lead, O)) if loss == "mse" else rng.integers(0, O, size=lead)
    return x, y


# -- semantics: a padded batch is its sequences run one by one -------------------------------
@settings(max_examples=40, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    case=st.sampled_from(CASES),
    layers=st.integers(1, 2),
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=5),
    extra=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_a_padded_batch_is_its_sequences_run_alone(cell, case, layers, lengths, extra, seed):
    """Outputs, final states, loss and every gradient of a padded batch equal what each
    sequence gives alone, cut to its length (the loss being the mean over valid targets)."""
    loss, target = case
    rng = np.random.default_rng(seed)
    model = model_for(*cell, layers, seed=seed)
    lengths = np.array(lengths, dtype=np.int64)
    T = int(lengths.max()) + extra  # padding after the longest sequence too
    x, y = data(rng, T, lengths, loss, target)
    value, grads, final = model.loss_and_grads(x, y, loss, target, lengths=lengths)
    out = model.predict(x, target, lengths=lengths)

    weights = (
        lengths / lengths.sum() if target == "every" else np.full(len(lengths), 1 / len(lengths))
    )
    total_loss, total = 0.0, {k: np.zeros_like(v) for k, v in grads.items()}
    for n, L in enumerate(lengths):
        xn = x[:L, n : n + 1]
        yn = y[n : n + 1] if target == "last" else y[:L, n : n + 1]
        vn, gn, fn = model.loss_and_grads(xn, yn, loss, target)
        total_loss += weights[n] * vn
        for k in total:
            total[k] += weights[n] * gn[k]
        for layer_state, alone in zip(final, fn, strict=True):
            for a, b in zip(layer_state, alone, strict=True):
                np.testing.assert_allclose(a[n], b[0], rtol=1e-12, atol=1e-15)
        want = model.predict(xn, target)
        got = out[n] if target == "last" else out[:L, n]
        np.testing.assert_allclose(
            got, want[0] if target == "last" else want[:, 0], rtol=1e-12, atol=1e-15
        )
    assert value == pytest.approx(total_loss, rel=1e-12)
    for k, g in grads.items():
        np.testing.assert_allclose(g, total[k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_layer_outputs_are_zero_at_padded_steps_and_the_state_is_held(cell, nonlinearity):
    backend, model = NumpyBackend(), model_for(cell, nonlinearity, 1)
    rng = np.random.default_rng(1)
    lengths = np.array([4, 1, 2])
    x = rng.normal(size=(4, 3, 3))
    state0 = model.zero_state(3)[0]
    weights = {
        k: model.params[f"rnn.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    hs, final, cache = backend.layer_forward(
        cell, weights, x, state0, nonlinearity=nonlinearity, lengths=lengths
    )
    assert not np.any(hs[~valid_steps(lengths, 4)])
    np.testing.assert_array_equal(final[0], hs[lengths - 1, np.arange(3)])
    grads, dx = backend.layer_backward(cell, weights, cache, rng.normal(size=hs.shape))
    assert not np.any(dx[~valid_steps(lengths, 4)])


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_full_lengths_give_the_fixed_length_numbers(cell, nonlinearity):
    model, rng = model_for(cell, nonlinearity), np.random.default_rng(2)
    for loss, target in CASES:
        x, y = data(rng, 6, [6, 6, 6], loss, target)
        a = model.loss_and_grads(x, y, loss, target)
        b = model.loss_and_grads(x, y, loss, target, lengths=np.array([6, 6, 6]))
        assert b[0] == pytest.approx(a[0], rel=1e-14)
        for k in a[1]:
            np.testing.assert_allclose(b[1][k], a[1][k], rtol=1e-13, atol=1e-16)


def test_every_step_losses_are_means_over_valid_steps():
    lengths = np.array([3, 1])
    valid = valid_steps(lengths, 3)
    rng = np.random.default_rng(0)
    out, y = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4))
    value, grad = loss_and_grad(out, y, "mse", valid)
    assert value == pytest.approx(np.sum((out - y)[valid] ** 2) / (4 * 4))
    assert not np.any(grad[~valid])
    classes = rng.integers(0, 4, size=(3, 2))
    classes[~valid] = 99  # never read: out of range on purpose
    value, grad = loss_and_grad(out, classes, "xent", valid)
    logp = out - np.log(np.exp(out).sum(-1, keepdims=True))
    assert value == pytest.approx(
        -np.mean([logp[t, n, classes[t, n]] for t, n in zip(*np.nonzero(valid), strict=True)])
    )
    assert not np.any(grad[~valid])


# -- padding is inert --------------------------------------------------------------------------
def test_padding_is_inert_in_the_reference_to_the_last_bit():
    found = padding_differences(reference_backend(), value=1e6)
    print("padding 0 vs 1e6, largest relative differences:", found)
    assert found == dict.fromkeys(found, 0.0)  # so check_padding_inert passes on it too


@pytest.mark.slow
@pytest.mark.parametrize("target,cell", [("last", "lstm"), ("every", "gru"), ("every", "rnn")])
def test_padding_changes_no_metric_of_a_whole_run(tmp_path, target, cell):
    results = []
    for pad in (0.0, 1e6):
        exp, registry = experiment(tmp_path, f"task.pad={pad}", target=target, cell=cell)
        session = prepare(exp, registry)
        info = train.RunInfo(exp, session.dataset, session.model)
        history = train.fit(session, registry, info)
        results.append((history, train.evaluate(session), session.model.params))
    (h1, m1, p1), (h2, m2, p2) = results
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in h1] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in h2
    ]
    assert m1 == m2
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)


# -- gradient checks and the conformance kit ---------------------------------------------------
def test_gradients_with_lengths_match_finite_differences():
    worst = 0.0
    for cfg in configs(reference_backend()):
        for loss, target in (("mse", "last"), ("xent", "every")):
            errors = gradient_errors(reference_backend(), cfg, loss, target, lengths=True)
            worst = max(worst, max(errors.values()))
            assert max(errors.values()) < 1e-7, (cfg, loss, target, errors)
    print(f"largest relative gradient error with lengths: {worst:.2e}")


class IgnoresLengths(NumpyBackend):
    """Declares the feature, then runs every sequence over the padding too."""

    name = "ignores-lengths"

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh", lengths=None):
        return super().layer_forward(cell, weights, x, state0, nonlinearity=nonlinearity)


class PaddingLeaks(NumpyBackend):
    """Honours lengths, but lets the padding's values into the weight gradient."""

    name = "padding-leaks"

    def layer_backward(self, cell, weights, cache, dhs):
        grads, dx = super().layer_backward(cell, weights, cache, dhs)
        grads["bias_ih"] = grads["bias_ih"] + 1e-3 * np.tanh(cache[0].sum())
        return grads, dx


class NoLengths(NumpyBackend):
    name = "nolengths"
    features = frozenset()


def test_check_backend_covers_lengths():
    # check_backend passes on the reference, lengths included: test_builtin_conformance.py
    # (test_backend_conforms[numpy]) runs exactly that
    # a backend that ignores lengths has exact gradients of what it computes (the head reads
    # each sequence's output at its last step), so the agreement with the reference fails
    with pytest.raises(AssertionError, match="with lengths"):
        check_agreement(IgnoresLengths())
    check_refuses_lengths(NoLengths())
    check_backend(NoLengths())  # without the feature: refused lengths, the rest as before
    with pytest.raises(AssertionError, match="not refused"):
        check_refuses_lengths(IgnoresLengths())


def test_check_padding_inert_catches_a_leak():
    class Leaky(NumpyBackend):
        name = "leaky"

        def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh", lengths=None):
            hs, final, cache = super().layer_forward(
                cell, weights, x, state0, nonlinearity=nonlinearity, lengths=lengths
            )
            return hs + 1e-9 * np.tanh(x.sum()), final, cache

    with pytest.raises(AssertionError, match="garbage in the padding"):
        check_padding_inert(Leaky())


def test_a_model_refuses_lengths_on_a_backend_without_the_feature():
    model = model_for("rnn")
    model.backend = NoLengths()
    x, y = data(np.random.default_rng(0), 4, [4, 2], "mse", "last")
    with pytest.raises(PluginError, match="'nolengths' does not support variable-length"):
        model.loss(x, y, "mse", "last", lengths=np.array([4, 2]))
    model.loss(x, y, "mse", "last")  # without lengths it runs as before


def test_check_task_accepts_a_task_with_lengths():
    from tests.support.varlen_task import register_tasks

    [spec] = register_tasks()
    for target in ("last", "every"):
        check_task(spec, {"target": target, "pad": 1e6}, hidden_size=6, epochs=5)
    with pytest.raises(AssertionError, match="split 'val': lengths must be >= 1"):
        check_task(spec, {"defect": "zero"})


@pytest.mark.slow
def test_check_training_agreement_accepts_a_dataset_with_lengths(tmp_path):
    exp, registry = experiment(tmp_path, "train.epochs=2", target="every")
    diffs = check_training_agreement("twin", exp, registry=registry)
    assert diffs == {"losses": 0.0, "metrics": 0.0, "params": 0.0}


# -- the core's checks: one clear message ------------------------------------------------------
def run_cli(tmp_path, *sets, target="last"):
    path = tmp_path / "varlen.toml"
    path.write_text(EXPERIMENT.format(target=target, cell="rnn"))
    args = ["run", str(path), "--plugin", PLUGIN, "--out", str(tmp_path / "runs")]
    for s in sets:
        args += ["--set", s]
    return CliRunner().invoke(main, args, catch_exceptions=True)


@pytest.mark.parametrize(
    "defect,words",
    [
        ("shape", "lengths must have shape [N] = (12,) (one per sequence), got (11,)"),
        ("float", "lengths must hold integers (int64), got dtype float64"),
        ("zero", "lengths must be >= 1, got lengths[2] = 0"),
        ("negative", "lengths must be >= 1, got lengths[2] = -1"),
        ("long", "lengths must be <= T = 9 (x's first axis), got lengths[2] = 10"),
        ("list", "lengths must be a NumPy integer array, got list"),
        ("stateful", "a stateful dataset (chunk_length > 0)"),
    ],
)
def test_bad_lengths_are_one_clear_message(tmp_path, defect, words):
    result = run_cli(tmp_path, f"task.defect='{defect}'")
    text = result.output
    assert result.exit_code == 2, (text, result.exception)
    assert "Traceback" not in text and len(text.strip().splitlines()) <= 2, text
    split = "train" if defect == "stateful" else "val"
    assert f"task 'varlen', split '{split}': " in text and words in text, text
    assert not (tmp_path / "runs").exists()


def test_a_backend_without_the_feature_is_refused_naming_backend_and_task(tmp_path):
    result = run_cli(tmp_path, "train.backend=nolengths")
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    for words in (
        "[train.backend]",
        "backend 'nolengths' does not support variable-length",
        "task 'varlen'",
    ):
        assert words in result.output, result.output


def test_the_core_zeroes_padding_and_keeps_lengths(tmp_path):
    exp, registry = experiment(tmp_path, "task.pad=1e6", target="every")
    session = prepare(exp, registry)
    for s in session.dataset.splits.values():
        assert s.lengths.dtype == np.int64
        pad = ~valid_steps(s.lengths, s.x.shape[0])
        assert pad.any() and not np.any(s.x[pad]) and not np.any(s.y[pad])
    assert session.model.backend.name == "numpy"


# -- batches, buckets, evaluation, checkpoints -------------------------------------------------
def test_a_batch_is_trimmed_to_its_longest_sequence():
    x, y = np.zeros((9, 4, 1)), np.zeros((9, 4), dtype=np.int64)
    split = Split(x, y, np.array([9, 2, 3, 1]))
    part = batch(split, np.array([3, 1]), "every")
    assert part.x.shape == (2, 2, 1) and part.y.shape == (2, 2)
    assert part.lengths.tolist() == [1, 2]
    last = batch(Split(x, np.arange(4), split.lengths), np.array([2]), "last")
    assert last.x.shape == (3, 1, 1) and last.y.tolist() == [2]
    whole = batch(Split(x, y), np.array([3, 1]), "every")
    assert whole.x.shape == (9, 2, 1) and whole.lengths is None


def test_trailing_padding_changes_no_training_step():
    """Extra all-padding steps after the longest sequence are trimmed away: the same numbers."""
    model = model_for("lstm", O=1)
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 6, size=10)
    x, y = data(rng, 5, lengths, "mse", "last", O=1)
    longer = np.concatenate([x, rng.normal(size=(4, 10, 3))])
    cfg = TrainConfig(batch_size=4, learning_rate=0.05)
    plan = EpochPlan(model.cfg, cfg, "mse", "last")
    params = []
    for xs in (x, longer):
        m = Model(model.cfg, model.backend, {k: v.copy() for k, v in model.params.items()})
        losses = reference_epoch(
            m, Optimizer(cfg, m.params), plan, Split(xs, y, lengths), np.arange(10), 0.05
        )
        params.append((losses, m.params))
    np.testing.assert_array_equal(params[0][0], params[1][0])
    assert all(np.array_equal(params[0][1][k], params[1][1][k]) for k in params[0][1])


def test_bucketed_orders_are_seeded_permutations_of_similar_lengths():
    lengths = np.random.default_rng(0).integers(1, 50, size=203)
    a = bucketed_order(np.random.default_rng(5), lengths, 16)
    b = bucketed_order(np.random.default_rng(5), lengths, 16)
    c = bucketed_order(np.random.default_rng(6), lengths, 16)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(a.tolist()) == list(range(203))
    spread = [np.ptp(lengths[a[i : i + 16]]) for i in range(0, 203, 16)]
    shuffled = np.random.default_rng(5).permutation(203)
    random_spread = [np.ptp(lengths[shuffled[i : i + 16]]) for i in range(0, 203, 16)]
    assert max(spread) <= 5 < 30 < min(random_spread)
    firsts = [lengths[a[i]] for i in range(0, 192, 16)]
    assert firsts != sorted(firsts)  # the batches themselves come in random order


def test_epoch_order_is_the_plain_permutation_unless_bucketing_applies():
    split = Split(np.zeros((3, 20, 1)), np.zeros((20, 1)), np.full(20, 3))
    plain = np.random.default_rng(1).permutation(20)
    for cfg, s in (
        (TrainConfig(), split),
        (TrainConfig(bucket_by_length=True), replace(split, lengths=None)),
    ):
        np.testing.assert_array_equal(epoch_order(np.random.default_rng(1), s, cfg), plain)


@pytest.mark.slow
def test_bucketing_trains_reproducibly_and_resumes_bit_for_bit(tmp_path, monkeypatch):
    sets = ("train.bucket_by_length=true", "task.skew=true", "train.checkpoint_seconds=0")
    exp, registry = experiment(tmp_path, *sets)
    ref = run_experiment(exp, registry, out_root=tmp_path / "ref")[1].path
    again = run_experiment(exp, registry, out_root=tmp_path / "again")[1].path
    assert_same_outcome(ref, again)
    plain = run_experiment(
        experiment(tmp_path, *sets[1:])[0], registry, out_root=tmp_path / "plain"
    )[1].path
    assert (ref / "metrics.jsonl").read_text() != (plain / "metrics.jsonl").read_text()

    real, calls = train.clip_gradients, [0]

    def clip(grads, mode, value):  # SIGINT in the middle of the second epoch
        calls[0] += 1
        if calls[0] == 9:
            signal.raise_signal(signal.SIGINT)
        return real(grads, mode, value)

    monkeypatch.setattr(train, "clip_gradients", clip)
    with pytest.raises(RunInterrupted):
        run_experiment(exp, registry, out_root=tmp_path / "stopped")
    monkeypatch.setattr(train, "clip_gradients", real)
    (stopped,) = (tmp_path / "stopped").iterdir()
    resume_experiment(stopped, registry)
    assert_same_outcome(ref, stopped)


def test_evaluation_honours_lengths():
    rng = np.random.default_rng(4)
    model = model_for("gru")
    lengths = np.array([5, 2, 3])
    x, y = data(rng, 5, lengths, "xent", "every")
    split = Split(x, y, lengths)
    dataset = Dataset({"val": split}, 3, 2, "xent", "every")
    want = model.loss(x, y, "xent", "every", lengths=lengths)
    assert split_loss(model, dataset, "val") == want
    from rnnlab.specs import Task, TaskContext

    assert Task({}, TaskContext(Path.cwd())).metrics(model, dataset, "val") == {"loss": want}
    assert want != model.loss(x, y, "xent", "every")


def test_the_data_digest_covers_lengths_and_keeps_old_digests():
    x, y = np.zeros((3, 2, 1)), np.zeros((2, 1))
    old = data_digest({"train": Split(x, y)})
    import hashlib

    h = hashlib.sha256()
    for a in (x, y):
        h.update(f"train{a.shape}{a.dtype.str}".encode())
        h.update(a.data)
    assert old == h.hexdigest()  # what a checkpoint written before lengths existed holds
    one, two = (data_digest({"train": Split(x, y, np.array(v))}) for v in ([3, 1], [3, 2]))
    assert len({old, one, two}) == 3


def test_bucket_by_length_absent_from_an_old_run_means_false(tmp_path):
    exp, _ = experiment(tmp_path)
    new = exp.to_dict()
    old = {t: {k: v for k, v in vs.items() if k != "bucket_by_length"} for t, vs in new.items()}
    assert config_differences(old, new) == []
    assert fingerprint(old) == fingerprint(new)
    on = {**new, "train": {**new["train"], "bucket_by_length": True}}
    assert config_differences(old, on) == ["train.bucket_by_length: '<absent>' -> True"]


def test_the_epoch_loss_is_a_mean_over_valid_steps():
    split = Split(np.zeros((5, 5, 1)), np.zeros((5, 5), dtype=np.int64), np.array([1, 2, 3, 4, 5]))
    order = np.array([4, 3, 2, 1, 0])
    counts = train.target_counts(split, order, 2, "every")
    np.testing.assert_array_equal(counts, [9, 5, 1])
    losses = np.array([1.0, 2.0, 4.0])  # each a mean over its batch's valid steps
    assert train.epoch_loss(losses, 5, 2, counts) == pytest.approx((9 + 10 + 4) / 15)
    assert train.target_counts(split, order, 2, "last") is None
    assert train.target_counts(replace(split, lengths=None), order, 2, "every") is None


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=80),
    batch_size=st.integers(1, 20),
    seed=st.integers(0, 2**16),
)
def test_bucketed_orders_hold_the_sorted_batches_in_some_order(lengths, batch_size, seed):
    """Whatever the lengths and batch size: a permutation whose full batches are consecutive
    slices of the sequences sorted by length, the partial batch last; the epoch
    computes no more padded steps than with a plain shuffle."""
    lengths = np.array(lengths)
    n = len(lengths)
    order = bucketed_order(np.random.default_rng(seed), lengths, batch_size)
    assert sorted(order.tolist()) == list(range(n))
    sorted_lengths = np.sort(lengths)
    batches = [np.sort(lengths[order[i : i + batch_size]]) for i in range(0, n, batch_size)]
    full, rest = divmod(n, batch_size)
    start = partial_batch_start(sorted_lengths, batch_size) if rest else n
    others = np.concatenate([sorted_lengths[:start], sorted_lengths[start + rest :]])
    chunks = [others[i : i + batch_size] for i in range(0, n - rest, batch_size)]
    assert sorted(map(tuple, batches[:full])) == sorted(map(tuple, chunks))
    if rest:  # the partial batch, last, a run of the sorted lengths
        np.testing.assert_array_equal(batches[-1], sorted_lengths[start : start + rest])
    steps = sum(b.max() * len(b) for b in batches)  # what the trimmed batches compute
    shuffled = np.random.default_rng(seed).permutation(n)
    plain = sum(
        lengths[shuffled[i : i + batch_size]].max() * len(shuffled[i : i + batch_size])
        for i in range(0, n, batch_size)
    )
    assert steps <= plain


class RecordingRunner(NumpyBackend):
    """The reference backend with an epoch runner (the reference loop) that records the
    lengths it is handed."""

    name = "recording"
    seen: list = []

    def epoch_runner(self, plan):
        def run(params, optimizer, x, y, order, lr, lengths=None):
            type(self).seen.append(lengths)
            model = Model(plan.model, self, params)
            return reference_epoch(model, optimizer, plan, Split(x, y, lengths), order, lr)

        return run


@pytest.mark.parametrize("declares", [True, False])
def test_an_epoch_runner_gets_lengths_only_when_it_declares_them(tmp_path, declares):
    exp, registry = experiment(tmp_path, "train.epochs=2", target="every")
    reference = prepare(exp, registry)
    train.fit(reference, registry, train.RunInfo(exp, reference.dataset, reference.model))

    session = prepare(exp, registry)
    assert "lengths" in session.plan.features()
    backend = RecordingRunner()
    backend.epoch_features = session.plan.features() - (set() if declares else {"lengths"})
    RecordingRunner.seen = []
    session.backend = session.model.backend = backend
    info, messages = train.RunInfo(exp, session.dataset, session.model), []
    train.fit(session, registry, info, on_status=messages.append)
    if declares:
        assert len(RecordingRunner.seen) == 2 and info.runner_declined == ()
        np.testing.assert_array_equal(
            RecordingRunner.seen[0], session.dataset.splits["train"].lengths
        )
    else:
        assert RecordingRunner.seen == [] and info.runner_declined == ("lengths",)
    for k, p in reference.model.params.items():
        np.testing.assert_array_equal(session.model.params[k], p)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=7), batch_size=st.integers(1, 4))
def test_bucketed_orders_compute_the_fewest_steps_of_any_order(lengths, batch_size):
    """Against every order of a small epoch: none computes fewer trimmed steps."""
    lengths = np.array(lengths)
    n = len(lengths)

    def steps(order):
        return sum(
            lengths[order[i : i + batch_size]].max() * len(order[i : i + batch_size])
            for i in range(0, n, batch_size)
        )

    best = min(steps(np.array(p)) for p in itertools.permutations(range(n)))
    assert steps(bucketed_order(np.random.default_rng(0), lengths, batch_size)) == best
