"""`rnnlab compare` and the [compare] table."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.display import figures as plots
from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.registry.manager import Registry
from rnnlab.training.compare import Tolerance, Trial, compare, resolve_backends
from tests.support.paths import EXPERIMENTS

SINE = EXPERIMENTS / "sine.toml"

# A backend that is numpy's, except for a small error in every forward pass.
SKEWED = """
from rnnlab.hookspecs import hookimpl
from rnnlab.specs import BackendSpec
from rnnlab.registry.manager import Registry


class Skewed:
    def __init__(self):
        self.inner = Registry(entry_points_=True).backend("numpy").load()
        self.name, self.cells, self.dtypes = "skewed", self.inner.cells, self.inner.dtypes

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh"):
        hs, last, cache = self.inner.layer_forward(cell, weights, x, state0,
                                                   nonlinearity=nonlinearity)
        return hs * (1 + 1e-6), last, cache

    def layer_backward(self, cell, weights, cache, dhs):
        return self.inner.layer_backward(cell, weights, cache, dhs)

    def epoch_runner(self, plan):
        return None


class WrongGradient(Skewed):
    # numpy's forward pass; the recurrent weights' gradient 1% too large

    def __init__(self):
        super().__init__()
        self.name = "wronggrad"

    def layer_forward(self, cell, weights, x, state0, *, nonlinearity="tanh"):
        return self.inner.layer_forward(cell, weights, x, state0, nonlinearity=nonlinearity)

    def layer_backward(self, cell, weights, cache, dhs):
        grads, dx = self.inner.layer_backward(cell, weights, cache, dhs)
        return {**grads, "weight_hh": grads["weight_hh"] * 1.01}, dx


@hookimpl
def register_backends():
    return [BackendSpec("skewed", Skewed), BackendSpec("wronggrad", WrongGradient)]
"""

# A training that amplifies rounding: a one-ulp change of the learning rate moves the losses by
# ~1e-6 in the first epoch and by tens of percent from the second on.
CHAOTIC = ("--set", "train.learning_rate=0.15", "--set", "train.grad_clip=none")


def experiment(tmp_path, extra=""):
    path = tmp_path / "sine.toml"
    path.write_text(SINE.read_text() + "\n" + extra)
    return path


def test_compare_table_is_read_and_validated(tmp_path):
    registry = Registry()
    path = experiment(tmp_path, '[compare]\nbackends = ["numpy", "numba"]\nrepeats = 2\n')
    exp = build_experiment(read_toml(path), registry, source=path)
    assert exp.compare.backends == ["numpy", "numba"] and exp.compare.repeats == 2
    assert resolve_backends(exp, registry, None) == ["numpy", "numba"]
    assert exp.to_dict()["compare"] == {"backends": ["numpy", "numba"], "repeats": 2}
    bad = experiment(tmp_path, '[compare]\nbackends = ["numpy", "nunba"]\n')
    exp = build_experiment(read_toml(bad), registry, source=bad)
    with pytest.raises(ConfigError, match=r"\[compare.backends\].*did you mean 'numba'"):
        resolve_backends(exp, registry, None)
    typo = experiment(tmp_path, "[compare]\nrepeat = 2\n")
    with pytest.raises(ConfigError, match=r"\[compare.repeat\].*did you mean 'repeats'"):
        build_experiment(read_toml(typo), registry, source=typo)


def test_default_run_config_has_no_compare_table():
    exp = build_experiment(read_toml(SINE), Registry(), source=SINE)
    assert "compare" not in exp.to_dict()


def test_compare_reports_timing_and_agreement_numpy_numba():
    registry = Registry()
    exp = build_experiment(read_toml(SINE), registry, source=SINE)
    seen = []
    report = compare(
        exp,
        registry,
        ["numpy", "numba"],
        repeats=2,
        epochs=2,
        on_trial=lambda r, t: seen.append((r, t.backend)),
    )
    assert seen == [(0, "numpy"), (0, "numba"), (1, "numpy"), (1, "numba")]  # interleaved
    assert report["agree"] and report["rtol"] == 1e-9
    first, second = report["rows"]
    assert first["speedup"] == 1.0 and first["max_difference"]["params"] == 0.0
    assert 0 < second["max_difference"]["params"] <= 1e-9
    assert second["repeat_difference"] == 0.0
    for row in report["rows"]:
        spe = row["seconds_per_epoch"]
        assert 0 < spe["min"] <= spe["median"] <= spe["max"]
        assert set(row["test"]) >= {"loss", "mse"}
    json.dumps(report)


def test_cli_json_and_exit_status_on_disagreement_numpy_numba(tmp_path):
    plugin = tmp_path / "skewed.py"
    plugin.write_text(SKEWED)
    path = experiment(tmp_path)
    runner = CliRunner()
    chart = tmp_path / "chart.png"
    ok = runner.invoke(
        main,
        [
            "compare",
            str(path),
            "--backends",
            "numpy,numba",
            "--epochs",
            "1",
            "--repeats",
            "1",
            "--json",
            "--chart",
            str(chart),
        ],
    )
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    if plots.available():
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    assert [r["backend"] for r in report["rows"]] == ["numpy", "numba"]
    bad = runner.invoke(
        main,
        [
            "compare",
            str(path),
            "--backends",
            "numpy,skewed",
            "--epochs",
            "1",
            "--repeats",
            "1",
            "--plugin",
            str(plugin),
            "--no-chart",
        ],
    )
    assert bad.exit_code == 1
    assert "skewed differ from numpy" in bad.stderr
    unknown = runner.invoke(main, ["compare", str(path), "--backends", "numpy,nope"])
    assert unknown.exit_code == 2 and "--backends" in unknown.stderr


def compare_args(path, backends, *extra):
    return ["compare", str(path), "--backends", backends, "--repeats", "1", *extra]


def test_rounding_amplified_by_the_training_is_agreement_numpy_numba(tmp_path):
    path = experiment(tmp_path)
    args = compare_args(path, "numpy,numba", "--epochs", "3", "--no-chart", *CHAOTIC)
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    numba = report["rows"][1]
    # far beyond the float64 tolerance, yet what rounding alone does to this training
    assert max(numba["max_difference"].values()) > 1e-3 and numba["agrees"]
    tolerance = report["tolerance"]
    assert tolerance["sensitive"] and tolerance["checked_epochs"] >= 1
    assert 0 < tolerance["drift"]["losses"][0] < 1e-4  # the first epoch still tells
    assert "amplifies rounding" in report["note"]
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0 and "note: this training amplifies rounding" in shown.stdout


def test_a_wrong_gradient_disagrees_even_where_rounding_is_amplified(tmp_path):
    plugin = tmp_path / "skewed.py"
    plugin.write_text(SKEWED)
    path = experiment(tmp_path)
    for extra in ((), CHAOTIC):
        args = compare_args(path, "numpy,wronggrad", "--epochs", "3", "--no-chart")
        result = CliRunner().invoke(main, [*args, "--plugin", str(plugin), *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert "wronggrad differ from numpy" in result.stderr


def test_tolerance_follows_the_drift_epoch_by_epoch():
    def trial(losses, params):
        history = [{"loss": v, "val_loss": v} for v in losses]
        return Trial("numpy", history, {"test": {"loss": losses[-1]}}, {"w": params}, 0.0, 1)

    ref = trial([1.0, 1.0, 1.0], np.ones(3))
    probe = trial([1.0 + 1e-14, 1.0 + 1e-6, 1.0], np.ones(3) * (1 + 1e-6))
    tolerance = Tolerance.measure(ref, probe, 1e-9)
    assert tolerance.losses == pytest.approx([1e-9, 1e-3, 1e-3], rel=1e-5)  # the drift only grows
    assert tolerance.sensitive and tolerance.sharp_epochs == 1 and tolerance.checked_epochs == 3
    assert "--epochs 1" in tolerance.note("numpy", "float64")
    # what rounding explains in epoch 2 is no excuse for a difference in epoch 1
    assert tolerance.excess(ref, trial([1.0 + 1e-8, 1.0, 1.0], np.ones(3))) > 1
    assert tolerance.excess(ref, trial([1.0, 1.0 + 5e-4, 1.0], np.ones(3))) <= 1
    # a NaN in one run only is far off, in both runs alike is no difference
    assert tolerance.excess(ref, trial([1.0, float("nan"), 1.0], np.ones(3))) == np.inf
    assert Tolerance.measure(ref, ref, 1e-9).excess(ref, ref) == 0.0
    blind = Tolerance.measure(ref, trial([2.0, 1.0, 1.0], np.ones(3) * 2), 1e-9)
    assert blind.checked_epochs == 0 and "no difference here" in blind.note("numpy", "float64")


def test_the_chart_goes_to_the_output_folder_not_the_current_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = experiment(tmp_path)
    out = tmp_path / "results"
    args = compare_args(path, "numpy", "--epochs", "1", "--out", str(out))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "compare.png").exists()
    if plots.available():
        assert (out / "sine.png").stat().st_size > 5000
        assert f"chart written to {out / 'sine.png'}" in result.stdout.replace("\n", "")
