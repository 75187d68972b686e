"""The diagnostics in a run: the [diagnostics] table, summary.json and metrics.jsonl, the
figures, `rnnlab show`'s line and `rnnlab plot`'s overlay; the numba backend's hidden gradients
against the reference's."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.experiment.schema import DiagnosticsConfig
from rnnlab.registry.manager import Registry
from tests.support.tiny_runs import SMALL_SINE


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})


def read_run(root):
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return run, summary, records


@pytest.mark.parametrize(
    "text,expected",
    [
        ("[diagnostics]\nevry = 2\n", "[diagnostics.evry]: unknown key; did you mean 'every'?"),
        ("[diagnostics]\nevery = -1\n", "[diagnostics.every]: must be >= 0, got -1"),
        ("[diagnostics]\nsample_size = 0\n", "[diagnostics.sample_size]: must be > 0, got 0"),
        ("[diagnostics]\nhealth_every = 'often'\n", "must be an integer, got 'often'"),
        ("[diagnostic]\nevery = 1\n", "[diagnostic]: unknown table; did you mean 'diagnostics'?"),
    ],
)
def test_the_table_is_validated_like_the_others(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text("[task]\nname = 'sine'\n" + text)
    with pytest.raises(ConfigError) as info:
        build_experiment(read_toml(path), Registry(), source=path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)


def test_defaults_and_the_recorded_config(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[task]\nname = 'sine'\n")
    exp = build_experiment(read_toml(path), Registry(), source=path)
    assert exp.diagnostics == DiagnosticsConfig(every=0, health_every=2, sample_size=256)
    assert "diagnostics" not in exp.to_dict()  # the default is not written (old runs resume)
    path.write_text("[task]\nname = 'sine'\n[diagnostics]\nevery = 2\n")
    exp = build_experiment(read_toml(path), Registry(), source=path)
    assert exp.to_dict()["diagnostics"] == {"every": 2, "health_every": 2, "sample_size": 256}


@pytest.fixture(scope="module")
def sine_runs(tmp_path_factory):
    """Two small sine runs (rnn and gru), the gradient flow recorded every epoch."""
    root = tmp_path_factory.mktemp("diagruns")
    config = root / "small.toml"
    config.write_text(SMALL_SINE)
    runs = []
    for cell in ("rnn", "gru"):
        out = root / cell
        result = cli(
            "run",
            config,
            "--out",
            out,
            "--set",
            f"model.cell={cell}",
            "--set",
            "diagnostics.every=1",
            "--set",
            "diagnostics.health_every=1",
            "--set",
            "diagnostics.sample_size=10",
            "--set",
            f"experiment.name=small_{cell}",
        )
        assert result.exit_code == 0, result.output
        runs.append(read_run(out))
    return runs


def test_a_run_records_the_gradient_flow_and_health(sine_runs):
    run, summary, records = sine_runs[0]
    diag = summary["diagnostics"]
    T = 5  # SMALL_SINE's window
    norms = diag["gradient_norm_by_step"]
    assert len(norms) == T and all(v > 0 for v in norms)
    assert diag["first_to_last"] == pytest.approx(norms[0] / norms[-1])
    assert diag["sample_size"] == 10
    assert set(diag["health"]) == {"spectral_radius", "saturated"}
    assert len(records) == 3
    for r in records:
        assert len(r["gradient_norm_by_step"]) == T
        assert set(r["health"]["spectral_radius"]) == {"l0"}
    # keep_best: the end of training is the best epoch's model, whose epoch record matches
    best = records[summary["best_epoch"] - 1]
    np.testing.assert_allclose(best["gradient_norm_by_step"], norms, rtol=1e-12)


def test_the_run_draws_gradient_flow_and_recurrent_health(sine_runs):
    pytest.importorskip("matplotlib")
    run, summary, _ = sine_runs[1]
    assert summary["diagnostics"]["figures"] == {
        "files": ["gradient_flow.png", "recurrent_health.png"]
    }
    for name in ("gradient_flow.png", "recurrent_health.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (run / name).stat().st_size > 8 * 1024


def test_show_prints_the_ratio(sine_runs):
    run, summary, _ = sine_runs[0]
    result = cli("show", run)
    assert result.exit_code == 0, result.output
    norms = summary["diagnostics"]["gradient_norm_by_step"]
    line = next(x for x in result.output.splitlines() if x.startswith("gradient flow:"))
    assert f"||dL/dh_1|| / ||dL/dh_5|| = {norms[0] / norms[-1]:.2g}" in line


def test_plot_overlays_the_gradient_flow_of_several_runs(sine_runs, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "flows.png"
    result = cli(
        "plot",
        "--no-task",
        sine_runs[0][0],
        sine_runs[1][0],
        "--out",
        tmp_path / "loss.png",
        "--flow-out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "gradient flow of 2 runs overlaid" in result.output
    assert out.stat().st_size > 8 * 1024


def test_the_numba_backend_gives_the_references_hidden_gradients():
    from rnnlab.experiment.schema import ModelConfig
    from rnnlab.nn.model import Model
    from rnnlab.testing import problem, reference_backend, relative_error
    from rnnlab.training.diagnostics import hidden_gradients

    spec = Registry().backend("numba")
    if spec.unavailable():
        pytest.skip(spec.unavailable())
    numba = spec.load()
    for cell in ("rnn", "lstm", "gru"):
        cfg = ModelConfig(cell=cell, hidden_size=5, layers=2)
        params, x, y = problem(cfg, "mse", "last", T=8, N=4)
        got = hidden_gradients(Model(cfg, numba, params), x, y, "mse", "last")
        want = hidden_gradients(Model(cfg, reference_backend(), params), x, y, "mse", "last")
        assert relative_error(got, want) < 1e-12, cell


def test_diagnostics_change_no_number_of_the_training(tmp_path):
    from dataclasses import replace

    from rnnlab.training.compare import train_once

    path = tmp_path / "small.toml"
    path.write_text(SMALL_SINE)
    exp = build_experiment(read_toml(path), Registry(), source=path)
    off = train_once(replace(exp, diagnostics=DiagnosticsConfig(health_every=0)), Registry())
    on = train_once(
        replace(exp, diagnostics=DiagnosticsConfig(every=1, health_every=1)), Registry()
    )
    assert [r["loss"] for r in on.history] == [r["loss"] for r in off.history]
    assert [r["val_loss"] for r in on.history] == [r["val_loss"] for r in off.history]
    assert on.metrics == off.metrics
    for name, p in off.params.items():
        np.testing.assert_array_equal(on.params[name], p)
    assert "health" not in off.history[0] and "gradient_norm_by_step" in on.history[0]


def test_the_flow_overlay_goes_beside_the_loss_overlay(sine_runs, tmp_path):
    pytest.importorskip("matplotlib")
    result = cli(
        "plot", "--no-task", sine_runs[0][0], sine_runs[1][0], "--out", tmp_path / "both.png"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "both.png").exists()
    assert (tmp_path / "gradient-flow-overlay.png").stat().st_size > 8 * 1024


def test_figures_survive_odd_records(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from rnnlab.display import diagnostic_figures as figs
    from rnnlab.display import figures as plots

    history = [
        {"epoch": 1, "gradient_norm_by_step": []},
        {
            "epoch": 2,
            "gradient_norm_by_step": [0.0, float("nan"), 1.0],
            "health": {"spectral_radius": {"l0": 0.9}, "saturated": "?"},
        },
    ]
    drawn = figs.run_diagnostic_figures(tmp_path, history, {"gradient_norm_by_step": [1e-3, 1]})
    assert drawn == {"files": ["gradient_flow.png", "recurrent_health.png"]}
    assert figs.run_diagnostic_figures(tmp_path, [], None) == {"files": []}
    monkeypatch.setattr(plots, "available", lambda: False)
    assert "matplotlib is not installed" in figs.run_diagnostic_figures(tmp_path, [], None)["note"]
