"""Figures: loss.png and the task's figure after a run, `rnnlab plot`, and the compare chart.

Each PNG is checked to be a real image of plausible size; the pictures themselves were looked
at by eye when they were made (see the helper's report).
"""

import json
import struct

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.cli.plot_cmd import collect
from rnnlab.display import figures as plots
from rnnlab.errors import RnnlabError
from rnnlab.specs import Task
from tests.support.tiny_runs import SMALL_SINE

pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """Width and height of a PNG; fails unless the file is one."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path} is truncated"
    return struct.unpack(">II", data[16:24])


def assert_figure(path, min_kb=8):
    width, height = png_size(path)
    assert 400 <= width <= 3000 and 300 <= height <= 3000, (width, height)
    assert path.stat().st_size > min_kb * 1024  # axes, labels and lines, not an empty canvas


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plotruns")
    config = root.parent / "small.toml"
    config.write_text(SMALL_SINE)
    for seed in (1, 2):
        result = cli(
            "run",
            config,
            "--out",
            root,
            "--set",
            "train.epochs=2",
            "--set",
            f"experiment.seed={seed}",
            "--set",
            f"experiment.name=s{seed}",
        )
        assert result.exit_code == 0, result.output
    return sorted(root.iterdir())


def test_a_finished_run_writes_loss_and_forecast_figures(two_runs):
    run = two_runs[0]
    assert_figure(run / "loss.png")
    assert_figure(run / "forecast.png")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["figures"] == {"files": ["loss.png", "forecast.png"]}


def test_chargen_draws_the_per_character_loss_of_a_test_excerpt(tmp_path):
    from tests.support.paths import EXPERIMENTS

    result = cli("run", EXPERIMENTS / "chargen.toml", "--out", tmp_path, "--set", "train.epochs=2")
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    assert_figure(run / "char_loss.png")
    assert json.loads((run / "summary.json").read_text())["figures"] == {
        "files": ["loss.png", "char_loss.png"]
    }


def test_plot_redraws_and_overlays_runs(two_runs, tmp_path):
    for run in two_runs:
        (run / "loss.png").unlink()
        (run / "forecast.png").unlink()
    overlay = tmp_path / "both.png"
    result = cli("plot", *two_runs, "--out", overlay)
    assert result.exit_code == 0, result.output
    for run in two_runs:
        assert_figure(run / "loss.png")
        assert_figure(run / "forecast.png")
    assert_figure(overlay)
    assert "the 2 runs overlaid" in result.output


def test_plot_takes_a_folder_of_runs_as_all_its_runs(two_runs):
    assert [r.path for r in collect((two_runs[0].parent,))] == two_runs


def test_plot_says_why_a_task_figure_cannot_be_drawn(two_runs, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    for name in ("config.toml", "summary.json", "metrics.jsonl"):  # no params.npz
        (run / name).write_text((two_runs[0] / name).read_text())
    result = cli("plot", run)
    assert result.exit_code == 0, result.output
    assert "no task figure" in result.output and "params.npz" in result.output
    assert_figure(run / "loss.png")


class Broken(Task):
    def figure(self, model, dataset, fig):
        fig.subplots().plot([1, 2], [3, 4])
        raise ValueError("the plugin's bug")


class BadName(Task):
    def figure(self, model, dataset, fig):
        return "../outside"


def test_a_task_figure_that_fails_never_fails_the_run(tmp_path):
    history = [
        {"epoch": 1, "loss": 0.5, "val_loss": 0.6},
        {"epoch": 2, "loss": 0.2, "val_loss": 0.3},
    ]
    out = plots.run_figures(tmp_path, Broken({}, None), None, None, history)
    assert out["files"] == ["loss.png"] and "ValueError: the plugin's bug" in out["note"]
    out = plots.run_figures(tmp_path, BadName({}, None), None, None, history)
    assert "expected a file name stem" in out["note"]
    assert not (tmp_path.parent / "outside.png").exists()
    assert plots.run_figures(tmp_path, Task({}, None), None, None, history) == {
        "files": ["loss.png"]
    }  # the default task draws nothing


def test_compare_chart(tmp_path):
    rows = [
        {
            "backend": "numpy",
            "seconds_per_epoch": 0.0055,
            "seconds_min": 0.005,
            "seconds_max": 0.006,
            "case": "B=32",
        },
        {"backend": "numba", "seconds_per_epoch": 0.002, "case": "B=32"},
        {"backend": "numpy", "seconds_per_epoch": 0.083, "case": "B=1"},
        {"backend": "numba", "seconds_per_epoch": 0.005, "case": "B=1"},
    ]
    assert_figure(plots.compare_chart(rows, tmp_path / "cases.png"))
    assert_figure(plots.compare_chart(rows[:2], tmp_path / "one.png"))
    with pytest.raises(RnnlabError, match="needs 'backend'"):
        plots.compare_chart([{"backend": "numpy"}], tmp_path / "bad.png")
    with pytest.raises(RnnlabError, match="no rows"):
        plots.compare_chart([], tmp_path / "bad.png")
