"""The listops_mini task: expressions valued by hand, drawn by LRA's law, lengths in range,
distinct and seeded splits, metrics that score what they say, and the conformance kit."""

from pathlib import Path

import numpy as np
import pytest

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.plugin import ConfigError, TaskContext
from rnnlab.registry.manager import Registry
from rnnlab.testing import check_task
from rnnlab_listops_mini import register_tasks
from rnnlab_listops_mini.language import TOKENS, depth, parse, tokens, tree, value
from rnnlab_listops_mini.task import OPTIONS, ListOpsTask, longest
from tests.support.paths import EXPERIMENTS

SPEC = register_tasks()[0]
SMALL = dict(
    max_depth=3, max_args=3, min_length=5, max_length=20, train_size=200, val_size=40, test_size=40
)


def task(**options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(SMALL)
    values.update(options)
    return ListOpsTask(values, TaskContext(Path.cwd()))


@pytest.mark.parametrize(
    "text, want, deep",
    [
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9, 2),
        ("[MED 1 2 3 4 ]", 2, 1),  # int(median) = int(2.5)
        ("[MED 5 1 9 ]", 5, 1),
        ("[SM 7 8 9 ]", 4, 1),  # 24 mod 10
        ("[MIN [MAX 1 5 ] [SM 3 3 ] ]", 5, 2),
        ("[SM [MED 0 9 ] [MAX [MIN 8 9 ] 1 ] ]", 2, 3),  # 4 + 8 = 12
        ("7", 7, 0),
    ],
)
def test_values_by_hand(text, want, deep):
    t = parse(text)
    assert value(t) == want and depth(t) == deep
    assert tokens(t) == text.split()


def test_trees_follow_lras_law():
    rng = np.random.default_rng(0)
    # one level of operators: the root is one with probability 0.25, its 2..4 arguments digits
    draws = [tree(1, 2, 4, rng) for _ in range(8000)]
    ops = [t for t in draws if not isinstance(t, int)]
    assert len(ops) / 8000 == pytest.approx(0.25, abs=0.02)
    counts = np.bincount([len(t[1]) for t in ops], minlength=5)[2:]
    np.testing.assert_allclose(counts / len(ops), 1 / 3, atol=0.04)
    assert all(isinstance(a, int) for t in ops for a in t[1])
    ops_used = {t[0] for t in ops}
    assert ops_used == {"[MIN", "[MAX", "[MED", "[SM"}


def test_longest_expression_by_hand():
    # depth 2, 3 arguments: [OP [OP d d d ] [OP d d d ] [OP d d d ] ] = 2 + 3 * 5 tokens
    assert longest(3, 3) == 17
    assert longest(2, 4) == 6
    with pytest.raises(ConfigError, match="at most 17 tokens") as info:
        task(max_depth=2, max_args=3, min_length=18, max_length=30).build(np.random.default_rng(0))
    assert info.value.key == "min_length"
    with pytest.raises(ConfigError, match="must be <= max_length"):
        task(min_length=30, max_length=20).build(np.random.default_rng(0))


def test_splits_hold_distinct_expressions_in_range_with_their_values():
    t = task()
    data = t.build(np.random.default_rng(3))
    seen = set()
    for name, s in data.splits.items():
        trees = data.meta["trees"][name]
        assert s.lengths.min() >= 5 and s.lengths.max() <= 20 and s.x.shape[0] == s.lengths.max()
        for n, e in enumerate(trees):
            codes = s.x[: s.lengths[n], n].argmax(axis=-1)
            text = " ".join(TOKENS[c] for c in codes)
            assert text == " ".join(tokens(e))
            assert value(parse(text)) == s.y[n] and depth(parse(text)) <= 3
            assert not s.x[s.lengths[n] :, n].any()
            assert text not in seen
            seen.add(text)
    assert len(seen) == 280
    again = t.build(np.random.default_rng(3))
    other = t.build(np.random.default_rng(4))
    for name in data.splits:
        for arr in ("x", "y", "lengths"):
            assert getattr(data.splits[name], arr).tobytes() == (
                getattr(again.splits[name], arr).tobytes()
            )
    assert data.splits["train"].y.tobytes() != other.splits["train"].y.tobytes()


class Fixed:
    def __init__(self, out):
        self.out = out

    def predict(self, x, target="last", lengths=None):
        return self.out


def test_metrics_by_hand():
    t = task()
    data = t.build(np.random.default_rng(0))
    s = data.splits["test"]
    out = np.eye(10)[s.y]
    out[:10] = np.eye(10)[(s.y[:10] + 1) % 10]  # a quarter wrong
    m = t.metrics(Fixed(out), data, "test")
    assert m["accuracy"] == 0.75 and m["solved"] == 0.0
    majority = np.argmax(np.bincount(data.splits["train"].y, minlength=10))
    assert m["baseline_acc"] == pytest.approx(np.mean(s.y == majority))
    assert t.metrics(Fixed(np.eye(10)[s.y]), data, "test")["solved"] == 1.0
    demo = t.demo(Fixed(out), data, np.random.default_rng(0))
    assert len(demo.rows) == 6 and demo.rows[0][4] == (s.y[0] + 1) % 10


def test_conformance():
    check_task(SPEC, SMALL)


def test_shipped_experiment_is_valid():
    raw = read_toml(EXPERIMENTS / "listops_mini.toml")
    build_experiment(raw, Registry(), source=EXPERIMENTS / "listops_mini.toml")
    options = {k: v for k, v in raw["task"].items() if k != "name"}
    task(**{**options, "train_size": 50, "val_size": 10, "test_size": 10}).build(
        np.random.default_rng(0)
    )
