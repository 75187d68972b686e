"""The selective_copy task: tokens scattered as defined, the baseline by hand, seeded disjoint
splits, metrics that score what they say, and the conformance kit."""

from pathlib import Path

import numpy as np
import pytest

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.plugin import TaskContext
from rnnlab.registry.manager import Registry
from rnnlab.sweep import build_plan
from rnnlab.testing import check_task
from rnnlab_selective_copy import register_tasks
from rnnlab_selective_copy.data import distances, draw, encode, input_codes, target_codes
from rnnlab_selective_copy.task import OPTIONS, SelectiveCopyTask, baseline_loss
from tests.support.paths import EXPERIMENTS

SPEC = register_tasks()[0]
SMALL = dict(tokens=3, padding=6, symbols=4, train_size=200, val_size=40, test_size=40)


def task(**options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(options)
    return SelectiveCopyTask(values, TaskContext(Path.cwd()))


def build(seed=0, **options):
    t = task(**{**SMALL, **options})
    return t, t.build(np.random.default_rng(seed))


def test_one_sequence_by_hand():
    # L = 3, M = 2, S = 3: tokens 2 and 3 in slots 1 and 4 of 5, then two markers (4)
    positions, values = np.array([[1, 4]]), np.array([[2, 3]])
    np.testing.assert_array_equal(input_codes(positions, values, 3, 3)[:, 0], [0, 2, 0, 0, 3, 4, 4])
    np.testing.assert_array_equal(target_codes(values, 3)[:, 0], [0, 0, 0, 0, 0, 2, 3])
    # token 1 shown at step 1, recalled at step 5; token 2 shown at 4, recalled at 6
    np.testing.assert_array_equal(distances(positions, 3), [[4, 2]])
    split = encode(positions, values, 3, 3)
    assert split.x.shape == (7, 1, 5) and split.y.shape == (7, 1)
    assert baseline_loss(3, 2, 3) == pytest.approx(2 * np.log(3) / 7)


def test_scatter_positions_are_an_increasing_uniform_subset():
    positions, values = draw(4000, 6, 3, 4, True, np.random.default_rng(0))
    assert np.all(np.diff(positions, axis=1) > 0)
    assert positions.min() == 0 and positions.max() == 8
    # every one of the L + M = 9 slots holds a token with probability M / (L + M) = 1/3
    share = np.bincount(positions.ravel(), minlength=9) / 4000
    np.testing.assert_allclose(share, 1 / 3, atol=0.03)
    assert values.min() == 1 and values.max() == 4
    fixed, _ = draw(5, 6, 3, 4, False, np.random.default_rng(0))
    np.testing.assert_array_equal(fixed, np.tile([0, 1, 2], (5, 1)))


def test_built_splits_hold_the_tokens_at_their_positions():
    _, data = build()
    for name, s in data.splits.items():
        codes = s.x.argmax(axis=-1)  # [L + 2M, N]
        positions = data.meta["positions"][name]
        slots = codes[:9]
        assert np.all((slots > 0).sum(axis=0) == 3)
        np.testing.assert_array_equal(np.take_along_axis(slots, positions.T, axis=0), s.y[9:])
        assert np.all(codes[9:] == 5) and not s.y[:9].any()


def test_same_bytes_for_one_seed_and_held_out_sequences_are_new():
    _, a = build(seed=2)
    _, b = build(seed=2)
    _, c = build(seed=3)
    for name in ("train", "val", "test"):
        assert a.splits[name].x.tobytes() == b.splits[name].x.tobytes()
        assert a.splits[name].y.tobytes() == b.splits[name].y.tobytes()
    assert a.splits["train"].x.tobytes() != c.splits["train"].x.tobytes()
    rows = {
        name: {a.splits[name].x[:, i].tobytes() for i in range(len(a.splits[name]))}
        for name in ("train", "val", "test")
    }
    assert len(rows["val"]) == 40 and len(rows["test"]) == 40
    assert not rows["val"] & rows["train"] and not rows["test"] & (rows["train"] | rows["val"])


class Fixed:
    def __init__(self, out):
        self.out = out

    def predict(self, x, target="last", lengths=None):
        return self.out


def test_metrics_of_a_perfect_model_and_of_one_wrong_token():
    t, data = build()
    s = data.splits["test"]
    perfect = np.eye(5)[s.y] * 10
    m = t.metrics(Fixed(perfect), data, "test")
    assert (m["recall_acc"], m["seq_acc"], m["solved"]) == (1.0, 1.0, 1.0)
    assert m["baseline_loss"] == pytest.approx(3 * np.log(4) / 12)
    assert m["baseline_acc"] == 0.25
    wrong = perfect.copy()
    wrong[-2] = np.eye(5)[(s.y[-2] % 4) + 1] * 10
    m = t.metrics(Fixed(wrong), data, "test")
    assert m["recall_acc"] == pytest.approx(2 / 3) and (m["seq_acc"], m["solved"]) == (0, 0)
    demo = t.demo(Fixed(wrong), data, np.random.default_rng(0))
    assert len(demo.rows) == 5 and all(row[4] == "2/3" for row in demo.rows)


def test_conformance():
    check_task(SPEC, SMALL)
    check_task(SPEC, {**SMALL, "scatter": False, "symbols": 8}, seeds=(0,))


def test_shipped_experiment_and_sweep_are_valid_and_share_data_and_budget():
    ref = read_toml(EXPERIMENTS / "selective_copy.toml")
    build_experiment(ref, Registry(), source=EXPERIMENTS / "selective_copy.toml")
    sweep = read_toml(EXPERIMENTS / "selective_copy_sweep.toml")
    assert sweep["task"] == ref["task"] and sweep["train"] == ref["train"]
    assert sweep["sweep"]["seeds"] == [0, 1, 2, 3, 4]
    plan = build_plan(sweep, Registry(), source=EXPERIMENTS / "selective_copy_sweep.toml")
    assert len(plan.variants) == 8
    assert sum("chrono_tmax" in v.raw["model"] for v in plan.variants) == 2
    for variant in plan.variants:
        options = {k: v for k, v in variant.raw["task"].items() if k != "name"}
        build(**{**options, "train_size": 50, "val_size": 10, "test_size": 10})
