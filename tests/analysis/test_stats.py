"""Statistics over seeds: intervals and tests equal scipy's on the same per-seed values; Wilson
intervals and Holm's correction against cases worked by hand; `rnnlab stats` on a real sweep."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.analysis.settings import parse_stats_table
from rnnlab.analysis.stats import (
    Threshold,
    bootstrap_mean_ci,
    compare,
    holm,
    superiority,
    table,
    wilson,
)
from rnnlab.cli import main
from rnnlab.errors import ConfigError

scipy_stats = pytest.importorskip("scipy.stats")

A = [0.31, 0.28, 0.35, 0.30, 0.27, 0.33]
B = [0.36, 0.34, 0.29, 0.41, 0.38, 0.37, 0.35]  # unpaired: other seeds, one more


def scipy_bca(data, statistic, *, seed, paired=False):
    res = scipy_stats.bootstrap(
        data,
        statistic,
        method="BCa",
        confidence_level=0.95,
        n_resamples=9999,
        paired=paired,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return [res.confidence_interval.low, res.confidence_interval.high]


def test_mean_interval_is_scipys_bca_bootstrap():
    ours = bootstrap_mean_ci(A, seed=7)
    want = scipy_bca((np.array(A),), np.mean, seed=7)
    assert ours == pytest.approx(want, abs=1e-9, rel=0)
    assert bootstrap_mean_ci(A, seed=7) == ours  # seeded: the same interval every time


def test_welch_p_value_and_superiority_interval_are_scipys():
    got = table(
        {"a": dict(enumerate(A)), "b": dict(zip(range(10, 17), B, strict=True))},
        lower_is_better=True,
    )
    pair = got["pairs"][0]
    welch = scipy_stats.ttest_ind(A, B, equal_var=False)
    assert pair["test"] == "Welch t"
    assert pair["t"] == pytest.approx(welch.statistic, abs=1e-9, rel=0)
    assert pair["p"] == pytest.approx(welch.pvalue, abs=1e-9, rel=0)
    assert pair["p_holm"] == pair["p"]  # one comparison: nothing to correct
    wins = sum((x < y) + 0.5 * (x == y) for x in A for y in B) / (len(A) * len(B))
    assert pair["superiority"] == pytest.approx(wins, abs=1e-12)

    def a12(x, y, axis=-1):
        return superiority(x, y, lower_is_better=True, axis=axis)

    assert pair["superiority_ci"] == pytest.approx(
        scipy_bca((np.array(A), np.array(B)), a12, seed=0), abs=1e-9, rel=0
    )
    row = got["variants"][0]
    assert row["ci"] == pytest.approx(scipy_bca((np.array(A),), np.mean, seed=0), abs=1e-9)
    assert (row["mean"], row["median"]) == (pytest.approx(np.mean(A)), np.median(A))
    assert row["std"] == pytest.approx(np.std(A, ddof=1), abs=1e-12)


def test_shared_seeds_are_paired():
    a, b = dict(enumerate(A)), dict(enumerate(B[:6]))
    pair = table({"a": a, "b": b}, lower_is_better=True)["pairs"][0]
    paired = scipy_stats.ttest_rel(A, B[:6])
    assert pair["test"] == "paired t"
    assert pair["p"] == pytest.approx(paired.pvalue, abs=1e-9, rel=0)
    assert pair["superiority"] == pytest.approx(np.mean(np.array(A) < np.array(B[:6])))


def test_direction_turns_superiority_round():
    low = compare(A, B, paired=False, lower_is_better=True)["superiority"]
    high = compare(A, B, paired=False, lower_is_better=False)["superiority"]
    assert low + high == pytest.approx(1.0)  # no ties between A and B


def test_wilson_interval_by_hand():
    # p = 0.5, n = 10, z = 1.96: centre 0.5, half-width z/(1+z²/n) * sqrt(p(1-p)/n + z²/4n²)
    z = 1.959963984540054
    half = z / (1 + z * z / 10) * math.sqrt(0.025 + z * z / 400)
    assert wilson(5, 10) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-12)
    assert wilson(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    # none solved: the interval starts at 0 and ends at z²/(n + z²)
    assert wilson(0, 10) == pytest.approx((0.0, z * z / (10 + z * z)), abs=1e-12)
    assert wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) is None


def test_holm_by_hand():
    # sorted: 0.01*4 = 0.04, 0.02*3 = 0.06, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, None, 0.6]) == pytest.approx([1.0, None, 1.0])  # None not counted, cap 1
    assert holm([]) == []


def test_few_seeds_and_degenerate_intervals_are_said():
    got = table({"a": {0: 1.0, 1: 1.0}, "b": {0: 2.0}}, lower_is_better=True)
    assert got["few_seeds"] == ["a", "b"]
    assert got["variants"][0]["ci"] is None  # no spread to resample
    assert got["pairs"][0]["p"] is None  # one seed: no test


def test_solved_threshold():
    t = Threshold.parse("test.mse <= 0.01")
    assert (t.split, t.metric, t.op, t.value) == ("test", "mse", "<=", 0.01)
    assert t.met(0.01) and not t.met(0.02)
    got = table({"a": {0: 0.005, 1: 0.2, 2: 0.001}}, lower_is_better=True, threshold=t)
    rate = got["variants"][0]["solve_rate"]
    assert (rate["solved"], rate["n"]) == (2, 3)
    assert rate["ci"] == pytest.approx(list(wilson(2, 3)))


@pytest.mark.parametrize(
    "table_, key",
    [
        ({"metric": "loss"}, "metric"),
        ({"metric": "dev.loss"}, "metric"),
        ({"direction": "down"}, "direction"),
        ({"solved": "test.mse = 0.1"}, "solved"),
        ({"solved": "test.mse < small"}, "solved"),
        ({"solve": "test.mse < 0.1"}, "solve"),
    ],
)
def test_stats_table_errors_name_file_and_key(table_, key):
    with pytest.raises(ConfigError) as info:
        parse_stats_table(table_, "exp.toml")
    message = str(info.value)
    assert message.startswith(f"exp.toml: [stats.{key}]") and "\n" not in message


SWEEP = """
[experiment]
name = "tiny"
[task]
name = "sine"
points = 120
window = 5
[model]
hidden_size = 4
[train]
epochs = 2
batch_size = 16
[stats]
metric = "test.mse"
solved = "test.mse < 0.45"
[sweep]
seeds = [0, 1, 2, 3, 4]
"model.cell" = ["rnn", "gru"]
"""


@pytest.mark.slow
def test_rnnlab_stats_of_a_sweep_equals_scipy_on_its_per_seed_metrics(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SWEEP)
    runner = CliRunner()
    done = runner.invoke(main, ["sweep", str(path), "--workers", "1", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    out = runner.invoke(main, ["stats", str(tmp_path / "tiny"), "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    record = json.loads((tmp_path / "tiny" / "sweep.json").read_text())
    per_seed = {v["id"]: {} for v in record["variants"]}
    for run in record["runs"]:
        summary = json.loads((tmp_path / "tiny" / run["run"] / "summary.json").read_text())
        per_seed[record["variants"][run["variant"]]["id"]][run["seed"]] = summary["metrics"][
            "test"
        ]["mse"]
    a, b = ([per_seed[v][s] for s in range(5)] for v in ("v00", "v01"))
    assert got["metric"] == "test.mse" and got["solved"] == "test.mse < 0.45"
    for row, values in zip(got["variants"], (a, b), strict=True):
        assert row["ci"] == pytest.approx(
            scipy_bca((np.array(values),), np.mean, seed=0), abs=1e-9, rel=0
        )
        assert row["solve_rate"]["solved"] == sum(v < 0.45 for v in values)
    pair = got["pairs"][0]
    assert pair["test"] == "paired t"  # the sweep ran both cells on the same seeds
    assert pair["p"] == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue, abs=1e-9, rel=0)
    # the sweep's own report carries the same statistics
    again = runner.invoke(
        main, ["sweep", str(path), "--workers", "1", "--out", str(tmp_path), "--json"]
    )
    assert json.loads(again.stdout)["stats"] == got
    text = runner.invoke(main, ["stats", str(tmp_path / "tiny"), "--metric", "val.mse"])
    assert text.exit_code == 0 and "pairwise" in text.output
    bad = runner.invoke(main, ["stats", str(tmp_path / "tiny"), "--metric", "test.nope"])
    assert bad.exit_code == 2 and "recorded: " in bad.output
