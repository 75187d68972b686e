"""The dyck task: its splits have the lengths, balance and separation it promises, are seeded,
its metrics score what they say per length band, and the shipped experiments run."""

from pathlib import Path

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.registry.manager import Registry
from rnnlab.specs import TaskContext
from rnnlab.testing import check_task
from rnnlab.training.loop import evaluate
from rnnlab.training.session import prepare
from rnnlab_dyck.data import bands
from rnnlab_dyck.language import matched_tags, next_sets
from rnnlab_dyck.task import OPTIONS, DyckTask
from tests.support.paths import EXPERIMENTS

SMALL = dict(
    train_max_length=20, test_max_length=40, band=10, train_size=300, val_size=60, test_size=80
)


def task(**options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(options)
    return DyckTask(values, TaskContext(Path.cwd()))


def build(seed=0, **options):
    t = task(**options)
    return t, t.build(np.random.default_rng(seed))


def as_bytes(strings):
    return [s.astype(np.uint8).tobytes() for s in strings]


@pytest.mark.parametrize("objective", ["next", "matched"])
@pytest.mark.parametrize("pairs", [1, 2])
def test_encoding_padding_and_targets(objective, pairs):
    t, data = build(pairs=pairs, objective=objective, **SMALL)
    assert data.input_size == 2 * pairs and data.target == "every"
    if objective == "next":
        assert (data.output_size, data.loss) == (2 * pairs + 1, "mse")
    else:
        assert (data.output_size, data.loss) == (2, "xent")
    for name, split in data.splits.items():
        strings = data.meta["strings"][name]
        assert split.lengths.dtype == np.int64 and split.x.shape[0] == split.lengths.max()
        np.testing.assert_array_equal(split.lengths, [len(s) for s in strings])
        for n, s in enumerate(strings):
            L = len(s)
            np.testing.assert_array_equal(split.x[:L, n].argmax(axis=1), s)
            np.testing.assert_array_equal(split.x[:L, n].sum(axis=1), 1.0)
            assert not split.x[L:, n].any() and not split.y[L:, n].any()
            want = next_sets(s, pairs) if objective == "next" else matched_tags(s, pairs)
            np.testing.assert_array_equal(split.y[:L, n], want)


@pytest.mark.parametrize("objective", ["next", "matched"])
def test_lengths_lie_in_their_ranges_and_test_bands_are_balanced(objective):
    t, data = build(objective=objective, min_length=3, **SMALL)
    for name in ("train", "val"):
        lengths = data.splits[name].lengths
        assert lengths.min() >= 3 and lengths.max() <= 20
        assert lengths.max() >= 18  # the whole range is drawn from, not just its start
    test = data.splits["test"].lengths
    assert test.min() >= 3 and test.max() <= 40 and test.max() >= 38
    counts = [int(np.sum((test >= lo) & (test <= hi))) for lo, hi in bands(40, 10)]
    assert counts == [20, 20, 20, 20]
    if objective == "next":
        assert all(len(s) % 2 == 0 for split in data.meta["strings"].values() for s in split)
    else:
        assert len({len(s) % 2 for s in data.meta["strings"]["train"]}) == 2


@pytest.mark.parametrize("objective", ["next", "matched"])
def test_no_held_out_string_is_in_train_and_no_test_string_in_val(objective):
    _, data = build(objective=objective, **SMALL)
    train, val, test = (set(as_bytes(data.meta["strings"][n])) for n in ("train", "val", "test"))
    assert not val & train and not test & train and not test & val
    # the short ones repeat within train: the dedup is what keeps them out of val and test
    assert len(train) < SMALL["train_size"]


def test_same_seed_same_splits_other_seed_other_splits():
    _, a = build(seed=4, **SMALL)
    _, b = build(seed=4, **SMALL)
    _, c = build(seed=5, **SMALL)
    for name in a.splits:
        for field in ("x", "y", "lengths"):
            np.testing.assert_array_equal(
                getattr(a.splits[name], field), getattr(b.splits[name], field)
            )
    assert as_bytes(a.meta["strings"]["test"]) != as_bytes(c.meta["strings"]["test"])


class Oracle:
    """A stand-in model that outputs the targets, wrong at chosen (step, string) places."""

    def __init__(self, split, objective, wrong=()):
        if objective == "next":
            self.out = split.y.copy()
        else:
            self.out = np.stack([1.0 - split.y, split.y.astype(float)], axis=-1)
        for t, n in wrong:
            self.out[t, n] = 1.0 - self.out[t, n]
        self.lengths = split.lengths

    def predict(self, x, target="last", lengths=None):
        assert target == "every" and lengths is self.lengths
        return self.out


@pytest.mark.parametrize("objective", ["next", "matched"])
def test_metrics_per_band_count_whole_strings(objective):
    t, data = build(objective=objective, **SMALL)
    test = data.splits["test"]
    perfect = t.metrics(Oracle(test, objective), data, "test")
    assert perfect == {
        "acc": 1.0,
        "step_acc": 1.0,
        "acc_len_1_10": 1.0,
        "acc_len_11_20": 1.0,
        "acc_len_21_30": 1.0,
        "acc_len_31_40": 1.0,
    }
    # one wrong step in each of 5 strings of the longest band (their last step), and a wrong
    # output in the padding of a short string, which must not count
    longest = np.flatnonzero(test.lengths > 30)[:5]
    wrong = [(test.lengths[n] - 1, n) for n in longest]
    short = np.flatnonzero(test.lengths <= 10)[0]
    m = t.metrics(Oracle(test, objective, wrong + [(test.x.shape[0] - 1, short)]), data, "test")
    assert m["acc_len_31_40"] == pytest.approx(15 / 20) and m["acc_len_1_10"] == 1.0
    assert m["acc"] == pytest.approx(75 / 80)
    assert m["step_acc"] == pytest.approx(1 - 5 / test.lengths.sum())
    # val holds training lengths only: no band past them
    assert set(t.metrics(Oracle(data.splits["val"], objective), data, "val")) == {
        "acc",
        "step_acc",
        "acc_len_1_10",
        "acc_len_11_20",
    }


def test_demo_names_the_first_wrong_step():
    t, data = build(demo_strings=4, **SMALL)
    test = data.splits["test"]
    rows = t.demo(Oracle(test, "next", [(2, n) for n in range(len(test))]), data, None).rows
    assert len(rows) == 4 and [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert all(r[3] == "no" and r[4] == 3 for r in rows)
    assert task(demo_strings=0).demo(None, data, None) is None


def test_figure_draws_accuracy_by_length():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    t, data = build(**SMALL)
    test = data.splits["test"]
    fig = Figure()
    assert t.figure(Oracle(test, "next", [(0, 0)]), data, fig) == "length_accuracy"
    ax = fig.axes[0]
    points = ax.lines[0].get_ydata()
    assert len(points) == len(np.unique(test.lengths)) and min(points) < 1 == max(points)


@pytest.mark.parametrize(
    "options, key",
    [
        (dict(train_max_length=40, test_max_length=40), "test_max_length"),
        (dict(min_length=10, train_max_length=8), "train_max_length"),
        (dict(min_length=3, train_max_length=3), "train_max_length"),  # no even length
        (
            dict(min_length=2, train_max_length=4, test_max_length=20, band=10, val_size=50),
            "val_size",
        ),  # only "()", "()()" and "(())" exist: train has them all
    ],
)
def test_impossible_options_name_their_key(options, key):
    with pytest.raises(ConfigError) as err:
        build(**options)
    assert err.value.key == key and err.value.table == "task"


def test_conforms_for_both_objectives():
    spec = Registry().task("dyck")
    check_task(spec, SMALL, seeds=(0,))
    check_task(spec, dict(SMALL, objective="matched", pairs=2), seeds=(1,))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shipped_experiments_share_data_size_and_budget(cell):
    raw = read_toml(EXPERIMENTS / f"dyck_{cell}.toml")
    ref = read_toml(EXPERIMENTS / "dyck_lstm.toml")
    assert raw["task"] == ref["task"] and raw["train"] == ref["train"]
    assert raw["model"]["cell"] == cell
    assert raw["model"]["hidden_size"] == ref["model"]["hidden_size"]
    build_experiment(raw, Registry(), source=EXPERIMENTS / f"dyck_{cell}.toml")


def test_shipped_sweep_is_the_per_cell_files_over_five_seeds():
    raw = read_toml(EXPERIMENTS / "dyck_sweep.toml")
    ref = read_toml(EXPERIMENTS / "dyck_lstm.toml")
    assert raw["task"] == ref["task"] and raw["train"] == ref["train"]
    assert raw["model"] == ref["model"] and raw["sweep"]["seeds"] == [0, 1, 2, 3, 4]
    cells = [v["model.cell"] for v in raw["sweep"]["variants"]]
    assert sorted(set(cells)) == ["gru", "lstm", "rnn"]


def test_shipped_tagging_experiment_is_the_same_data_and_budget_with_tags():
    raw = read_toml(EXPERIMENTS / "dyck_matched.toml")
    ref = read_toml(EXPERIMENTS / "dyck_lstm.toml")
    assert raw["task"]["objective"] == "matched" and raw["train"] == ref["train"]
    assert raw["model"] == ref["model"]
    build_experiment(raw, Registry(), source=EXPERIMENTS / "dyck_matched.toml")


@pytest.mark.slow
def test_small_experiment_runs_end_to_end_with_band_metrics_and_demo():
    raw = read_toml(EXPERIMENTS / "dyck_gru.toml")
    raw["task"].update(SMALL)
    raw["model"]["hidden_size"] = 4
    raw["train"]["epochs"] = 1
    session = prepare(build_experiment(raw, Registry()), Registry())
    metrics = evaluate(session)
    assert set(metrics["test"]) == {
        "loss",
        "acc",
        "step_acc",
        "acc_len_1_10",
        "acc_len_11_20",
        "acc_len_21_30",
        "acc_len_31_40",
    }
    demo = session.task.demo(session.model, session.dataset, np.random.default_rng(0))
    assert len(demo.rows) == 6 and len(demo.columns) == len(demo.rows[0])
