"""The recall task (MQAR): pairs, queries and gaps as defined, the power law by hand, variable
lengths, seeded disjoint splits, metrics that score what they say, and the conformance kit."""

from pathlib import Path

import numpy as np
import pytest

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.plugin import ConfigError, TaskContext
from rnnlab.registry.manager import Registry
from rnnlab.sweep import build_plan
from rnnlab.testing import check_task
from rnnlab_recall import register_tasks
from rnnlab_recall.data import batch, distances, gap_probabilities, sequence, vocabularies
from rnnlab_recall.task import OPTIONS, RecallTask
from tests.support.paths import EXPERIMENTS

SPEC = register_tasks()[0]
SMALL = dict(vocab=12, pairs=2, length=16, min_length=8, train_size=200, val_size=40, test_size=40)


def task(**options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(options)
    return RecallTask(values, TaskContext(Path.cwd()))


def build(seed=0, **options):
    t = task(**{**SMALL, **options})
    return t, t.build(np.random.default_rng(seed))


def test_vocabularies_and_power_law_by_hand():
    keys, values = vocabularies(16)
    np.testing.assert_array_equal(keys, np.arange(1, 8))
    np.testing.assert_array_equal(values, np.arange(8, 16))
    # a = 0.5, three gaps: 0.5 * [1, 2**-0.5, 3**-0.5], normalised
    w = np.array([1, 2**-0.5, 3**-0.5])
    np.testing.assert_allclose(gap_probabilities(3, 0.5), w / w.sum())
    np.testing.assert_allclose(gap_probabilities(3, 0.5), [0.43774, 0.30953, 0.25273], atol=1e-5)
    np.testing.assert_allclose(gap_probabilities(4, 1.0), 0.25)


def test_a_single_pairs_gap_follows_the_power_law():
    rng = np.random.default_rng(0)
    # length 12, one pair: the query is at step 2 + 2g, g in 0..4
    gaps = [(sequence(12, 1, 8, 0.3, False, rng)[2][0] - 2) // 2 for _ in range(6000)]
    share = np.bincount(gaps, minlength=5) / 6000
    np.testing.assert_allclose(share, gap_probabilities(5, 0.3), atol=0.02)


def test_two_gaps_are_drawn_one_after_another_without_replacement():
    # length 10, two pairs: gaps from 0..2; P(g1 = a, g2 = b) = p_a p_b / (1 - p_a)
    p = gap_probabilities(3, 0.3)
    _, _, queries = batch(30000, 10, 2, 8, 0.3, False, np.random.default_rng(2))
    gaps = (queries - 4) // 2
    assert np.all(gaps[:, 0] != gaps[:, 1])
    for a in range(3):
        for b in range(3):
            if a != b:
                share = np.mean((gaps[:, 0] == a) & (gaps[:, 1] == b))
                assert share == pytest.approx(p[a] * p[b] / (1 - p[a]), abs=0.01)


@pytest.mark.parametrize("noise", [False, True])
def test_sequence_holds_pairs_then_each_key_queried_once(noise):
    rng = np.random.default_rng(1)
    for _ in range(50):
        codes, y, queries = sequence(20, 3, 16, 0.01, noise, rng)
        keys, values = codes[0:6:2], codes[1:6:2]
        assert len(set(keys)) == 3 and len(set(values)) == 3
        assert np.all((keys >= 1) & (keys <= 7)) and np.all((values >= 8) & (values <= 15))
        assert np.all(queries >= 6) and np.all(queries < 20) and np.all((queries - 6) % 2 == 0)
        np.testing.assert_array_equal(codes[queries], keys)
        np.testing.assert_array_equal(y[queries], values)
        others = np.setdiff1d(np.arange(6, 20), queries)
        assert not y[others].any() and not y[:6].any()
        if noise:
            assert np.all(codes[others] >= 8)
        else:
            assert not codes[others].any()
    np.testing.assert_array_equal(distances(np.array([[6, 12, 8]])), [[6, 10, 4]])


def test_variable_lengths_padding_and_targets():
    _, data = build()
    for s in data.splits.values():
        assert s.lengths.dtype == np.int64 and s.x.shape[0] == s.lengths.max()
        assert set(np.unique(s.lengths)) <= {8, 10, 12, 14, 16}
        valid = np.arange(s.x.shape[0])[:, None] < s.lengths[None, :]
        np.testing.assert_array_equal(s.x.sum(axis=-1), valid)
        assert not s.y[~valid].any()
        assert np.all((s.y > 0).sum(axis=0) == 2)
    assert len(np.unique(data.splits["train"].lengths)) == 5
    assert (data.input_size, data.output_size, data.loss, data.target) == (12, 12, "xent", "every")


def test_same_bytes_for_one_seed_and_held_out_sequences_are_new():
    _, a = build(seed=5)
    _, b = build(seed=5)
    _, c = build(seed=6)
    for name in ("train", "val", "test"):
        for arr in ("x", "y", "lengths"):
            assert getattr(a.splits[name], arr).tobytes() == getattr(b.splits[name], arr).tobytes()
    assert a.splits["train"].x.tobytes() != c.splits["train"].x.tobytes()

    def rows(s):
        codes = s.x.argmax(axis=-1)
        return {codes[: s.lengths[i], i].tobytes() for i in range(len(s))}

    train, val, test = (rows(a.splits[n]) for n in ("train", "val", "test"))
    assert len(val) == 40 and len(test) == 40
    assert not val & train and not test & (train | val)


@pytest.mark.parametrize(
    "options, key",
    [
        (dict(vocab=8, pairs=4), "pairs"),
        (dict(min_length=18), "min_length"),
        (dict(pairs=3, min_length=8), "min_length"),
        (dict(length=9, min_length=9), "length"),
    ],
)
def test_impossible_options_are_config_errors(options, key):
    with pytest.raises(ConfigError) as info:
        build(**options)
    assert info.value.key == key


class Fixed:
    def __init__(self, out):
        self.out = out

    def predict(self, x, target="last", lengths=None):
        return self.out


def test_metrics_of_a_perfect_model_and_of_one_wrong_query():
    t, data = build()
    s = data.splits["test"]
    perfect = np.eye(12)[s.y] * 10
    m = t.metrics(Fixed(perfect), data, "test")
    assert (m["recall_acc"], m["seq_acc"], m["solved"]) == (1.0, 1.0, 1.0)
    # 2 pairs per sequence, 6 values to guess from, over the split's valid steps
    assert m["baseline_loss"] == pytest.approx(2 * 40 * np.log(6) / s.lengths.sum())
    assert m["baseline_acc"] == pytest.approx(1 / 6)
    wrong = perfect.copy()
    first = data.meta["queries"]["test"][:, 0]
    cols = np.arange(len(s))
    wrong[first, cols] = np.eye(12)[np.where(s.y[first, cols] == 6, 7, 6)] * 10
    m = t.metrics(Fixed(wrong), data, "test")
    assert m["recall_acc"] == 0.5 and (m["seq_acc"], m["solved"]) == (0.0, 0.0)
    # a wrong answer after a sequence's end is not counted
    late = perfect.copy()
    short = int(np.argmin(s.lengths))
    late[s.lengths[short] :, short] = np.eye(12)[3] * 10
    assert t.metrics(Fixed(late), data, "test")["seq_acc"] == 1.0
    demo = t.demo(Fixed(wrong), data, np.random.default_rng(0))
    assert len(demo.rows) == 4 and all(row[4] == "1/2" for row in demo.rows)


def test_conformance():
    check_task(SPEC, SMALL)
    check_task(SPEC, {**SMALL, "noise": True, "min_length": 16}, seeds=(0,))


def test_shipped_experiment_and_sweep_are_valid_and_share_data_and_budget():
    ref = read_toml(EXPERIMENTS / "recall.toml")
    build_experiment(ref, Registry(), source=EXPERIMENTS / "recall.toml")
    sweep = read_toml(EXPERIMENTS / "recall_sweep.toml")
    assert sweep["task"] == ref["task"] and sweep["train"] == ref["train"]
    assert sweep["sweep"]["seeds"] == [0, 1, 2, 3, 4]
    plan = build_plan(sweep, Registry(), source=EXPERIMENTS / "recall_sweep.toml")
    assert len(plan.variants) == 8
    assert sum("chrono_tmax" in v.raw["model"] for v in plan.variants) == 2
    for variant in plan.variants:  # the task's own checks run when it builds
        options = {k: v for k, v in variant.raw["task"].items() if k != "name"}
        build(**{**options, "train_size": 50, "val_size": 10, "test_size": 10})
