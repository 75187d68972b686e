"""`rnnlab compare` and the [compare] table."""

import json

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.display import figures as plots
from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.registry.manager import Registry
from rnnlab.training.compare import compare, resolve_backends
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


@hookimpl
def register_backends():
    return [BackendSpec("skewed", Skewed)]
"""


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
