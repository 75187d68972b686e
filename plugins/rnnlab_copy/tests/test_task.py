"""The copy task: sequences laid out as defined, the baseline by hand, seeded disjoint splits,
metrics that score what they say, the conformance kit, and the shipped experiments."""

from pathlib import Path

import numpy as np
import pytest

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.plugin import ConfigError, TaskContext
from rnnlab.registry.manager import Registry
from rnnlab.sweep import build_plan
from rnnlab.testing import check_task
from rnnlab_copy import register_tasks
from rnnlab_copy.data import encode, input_codes, target_codes
from rnnlab_copy.task import OPTIONS, CopyTask, baseline_loss
from tests.support.paths import EXPERIMENTS

SPEC = register_tasks()[0]
SMALL = dict(length=5, recall=4, symbols=5, train_size=200, val_size=40, test_size=40)


def task(**options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(options)
    return CopyTask(values, TaskContext(Path.cwd()))


def build(seed=0, **options):
    t = task(**{**SMALL, **options})
    return t, t.build(np.random.default_rng(seed))


def test_one_sequence_by_hand():
    # T = 3, K = 2, S = 3: symbols 1 3, T - 1 = 2 blanks, the delimiter (4), K = 2 blanks
    data = np.array([[1, 3]])
    np.testing.assert_array_equal(input_codes(data, 3, 3)[:, 0], [1, 3, 0, 0, 4, 0, 0])
    np.testing.assert_array_equal(target_codes(data, 3)[:, 0], [0, 0, 0, 0, 0, 1, 3])
    split = encode(data, 3, 3)
    assert split.x.shape == (7, 1, 5) and split.y.shape == (7, 1)
    np.testing.assert_array_equal(split.x[:, 0].argmax(axis=1), [1, 3, 0, 0, 4, 0, 0])
    np.testing.assert_array_equal(split.x.sum(axis=-1), 1.0)


def test_baseline_is_the_papers():
    assert baseline_loss(100, 10, 8) == pytest.approx(10 * np.log(8) / 120)
    assert baseline_loss(3, 2, 3) == pytest.approx(2 * np.log(3) / 7)


def test_paper_layout_at_default_options():
    t = task(train_size=4, val_size=4, test_size=4)
    data = t.build(np.random.default_rng(0))
    x = data.splits["train"].x.argmax(axis=-1)  # [T + 20, N]
    y = data.splits["train"].y
    assert x.shape == (70, 4) and (data.input_size, data.output_size) == (10, 9)
    assert np.all((x[:10] >= 1) & (x[:10] <= 8)) and not x[10:59].any()
    assert np.all(x[59] == 9) and not x[60:].any()
    assert not y[:60].any()
    np.testing.assert_array_equal(y[60:], x[:10])


def test_same_bytes_for_one_seed_and_different_for_another():
    _, a = build(seed=3)
    _, b = build(seed=3)
    _, c = build(seed=4)
    for name in ("train", "val", "test"):
        assert a.splits[name].x.tobytes() == b.splits[name].x.tobytes()
        assert a.splits[name].y.tobytes() == b.splits[name].y.tobytes()
    assert a.splits["train"].x.tobytes() != c.splits["train"].x.tobytes()


def test_held_out_sequences_are_new():
    _, data = build(train_size=100, val_size=30, test_size=30, recall=3, symbols=6)
    rows = {k: {r.tobytes() for r in v} for k, v in data.meta["symbols"].items()}
    assert len(rows["val"]) == 30 and len(rows["test"]) == 30
    assert not rows["val"] & rows["train"] and not rows["test"] & rows["train"]
    assert not rows["test"] & rows["val"]


def test_too_few_distinct_sequences_is_a_config_error():
    # 2 symbols, recall 2: only 4 distinct sequences exist
    with pytest.raises(ConfigError, match="cannot draw"):
        build(recall=2, symbols=2, train_size=50, val_size=10)


class Fixed:
    """A stand-in model whose outputs at every step are given."""

    def __init__(self, out):
        self.out = out

    def predict(self, x, target="last", lengths=None):
        assert target == "every"
        return self.out


def cross_entropy(logits, y):
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, y[..., None], axis=-1).mean()


def test_metrics_of_a_perfect_model_and_of_one_without_memory():
    t, data = build()
    s = data.splits["test"]
    perfect = np.eye(6)[s.y] * 10
    m = t.metrics(Fixed(perfect), data, "test")
    assert (m["recall_acc"], m["seq_acc"], m["solved"]) == (1.0, 1.0, 1.0)
    assert m["baseline_acc"] == 0.2
    # blanks until the recall, then the same logit for every symbol (and none for the blank)
    memoryless = np.zeros(perfect.shape)
    memoryless[:-4, :, 0] = 50.0
    memoryless[-4:, :, 0] = -50.0
    assert cross_entropy(memoryless, s.y) == pytest.approx(m["baseline_loss"], rel=1e-9)
    assert m["baseline_loss"] == pytest.approx(4 * np.log(5) / 13)
    # one recalled symbol of four wrong in every sequence
    wrong = perfect.copy()
    wrong[-1] = np.eye(6)[(s.y[-1] % 5) + 1] * 10
    m = t.metrics(Fixed(wrong), data, "test")
    assert m["recall_acc"] == pytest.approx(3 / 4) and m["seq_acc"] == 0.0
    assert m["solved"] == 0.0
    demo = t.demo(Fixed(wrong), data, np.random.default_rng(0))
    assert len(demo.rows) == 5 and all(row[3] == "3/4" for row in demo.rows)


def test_conformance():
    check_task(SPEC, SMALL)


def test_shipped_experiments_share_data_size_and_budget():
    ref = read_toml(EXPERIMENTS / "copy_lstm.toml")
    for cell in ("rnn", "lstm", "gru"):
        raw = read_toml(EXPERIMENTS / f"copy_{cell}.toml")
        assert raw["task"] == ref["task"] and raw["train"] == ref["train"]
        assert raw["model"]["cell"] == cell
        assert raw["model"]["hidden_size"] == ref["model"]["hidden_size"]
        assert raw["train"]["backend"] == "numba"
        build_experiment(raw, Registry(), source=EXPERIMENTS / f"copy_{cell}.toml")
    sweep = read_toml(EXPERIMENTS / "copy_sweep.toml")
    assert sweep["task"] == ref["task"] and sweep["train"] == ref["train"]
    assert sweep["sweep"]["seeds"] == [0, 1, 2, 3, 4]
    plan = build_plan(sweep, Registry(), source=EXPERIMENTS / "copy_sweep.toml")
    runs = {
        (v.raw["task"]["length"], v.raw["model"]["cell"], v.raw["model"].get("chrono_tmax", 0))
        for v in plan.variants
    }
    assert runs == {
        (T, cell, chrono)
        for T in (50, 100)
        for cell, chrono in (("rnn", 0), ("lstm", 0), ("lstm", T + 20), ("gru", 0))
    }
