"""`rnnlab run` end to end: the run directory, reproducibility, the sine bar, clean errors."""

import json
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from tests.support.paths import EXPERIMENTS


def run_cli(args, **kw):
    return CliRunner().invoke(main, args, env={"COLUMNS": "200"}, **kw)


def run_dir_of(output_root):
    (path,) = output_root.iterdir()
    return path


def test_run_writes_a_complete_run_directory(small_sine, tmp_path):
    out = tmp_path / "runs"
    result = run_cli(["run", str(small_sine), "--out", str(out)])
    assert result.exit_code == 0, result.output
    run_dir = run_dir_of(out)
    assert f"run saved in {run_dir}" in result.output.replace("\n", "")
    assert "epoch 3/3" in result.output  # not a terminal: one plain line per epoch
    config = tomllib.loads((run_dir / "config.toml").read_text())
    assert config["train"]["epochs"] == 3 and config["train"]["optimizer"] == "adam"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_run"] == 3
    assert set(summary["metrics"]) == {"train", "val", "test"}
    assert {"mse", "rmse", "forecast_mse", "loss"} <= set(summary["metrics"]["test"])
    assert summary["versions"]["numpy"] == np.__version__ and summary["seed"] == 3
    with np.load(run_dir / "params.npz") as params:
        assert params["rnn.weight_hh_l0"].shape == (8, 8) and params["head.weight"].shape == (1, 8)


def test_a_new_directory_every_time(small_sine, tmp_path):
    out = tmp_path / "runs"
    for _ in range(2):
        assert run_cli(["run", str(small_sine), "--out", str(out)]).exit_code == 0
    assert len(list(out.iterdir())) == 2


def test_same_seed_same_numbers_bit_for_bit(small_sine, tmp_path):
    summaries = []
    for k in range(2):
        out = tmp_path / str(k)
        assert (
            run_cli(
                ["run", str(small_sine), "--out", str(out), "--set", "model.layers=2"]
            ).exit_code
            == 0
        )
        summaries.append(json.loads((run_dir_of(out) / "summary.json").read_text()))
    assert summaries[0]["metrics"] == summaries[1]["metrics"]
    other = tmp_path / "other"
    run_cli(["run", str(small_sine), "--out", str(other), "--set", "experiment.seed=4"])
    assert (
        json.loads((run_dir_of(other) / "summary.json").read_text())["metrics"]
        != summaries[0]["metrics"]
    )


def test_default_sine_experiment_meets_the_bar(tmp_path):
    """The article's case, as shipped: test MSE <= 1e-5 with the NumPy backend."""
    result = run_cli(["run", str(EXPERIMENTS / "sine.toml"), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["metrics"]["test"]["mse"] <= 1e-5
    assert summary["backend"] == "numpy" and summary["epochs_run"] == 100


@pytest.mark.parametrize(
    "args,expected",
    [
        (["run", "missing.toml"], "missing.toml: no such file"),
        (["run", "{small}", "--set", "train.epochs=0"], "[train.epochs]: must be > 0"),
        (["run", "{small}", "--set", "nosuch.key=1"], "unknown table"),
        (["run", "{small}", "--set", "train.backend=jax"], "unknown backend 'jax'"),
        (["run", "{small}", "--set", "task.window=500"], "[task.window]: window 500 does not fit"),
        (["run", "{small}", "--set", "model.cell=lstm", "--plugin", "none.py"], "none.py"),
    ],
)
def test_user_errors_are_one_message_without_traceback(small_sine, tmp_path, args, expected):
    args = [a.replace("{small}", str(small_sine)) for a in args]
    result = run_cli(args + ["--out", str(tmp_path)])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    assert expected in result.output.replace("\n", " ") or expected in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rnnlab", "--debug", "run", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "rnnlab", "run", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "missing.toml: no such file" in result.stderr
