"""`rnnlab runs`, `show` and `diff`: reading run directories back, damaged ones included."""

import json

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.display import figures as plots
from rnnlab.display.textplot import line_chart
from rnnlab.store.records import find_runs, read_history
from tests.support.tiny_runs import SMALL_SINE


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "220"})


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """Two finished tiny runs (hidden 8 and 6), a run killed early, and a damaged one."""
    root = tmp_path_factory.mktemp("runs")
    config = root.parent / "small.toml"
    config.write_text(SMALL_SINE)
    with pytest.MonkeyPatch.context() as mp:  # figures are test_plots.py's business
        mp.setattr(plots, "available", lambda: False)
        for hidden in (8, 6):
            result = cli(
                "run",
                config,
                "--out",
                root,
                "--set",
                "train.epochs=2",
                "--set",
                f"model.hidden_size={hidden}",
                "--set",
                f"experiment.name=h{hidden}",
            )
            assert result.exit_code == 0, result.output
    h8 = next(root.glob("h8-*"))
    killed = root / "killed"  # config and two epochs written, then SIGKILL mid-line
    killed.mkdir()
    (killed / "config.toml").write_text((h8 / "config.toml").read_text())
    lines = (h8 / "metrics.jsonl").read_text().splitlines()
    (killed / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    damaged = root / "damaged"
    damaged.mkdir()
    (damaged / "config.toml").write_text("[train\n")
    (damaged / "summary.json").write_text("{not json")
    (root / "not-a-run").mkdir()  # an unrelated empty folder is skipped
    return root


def by_name(output_json):
    return {r["name"].split("-")[0]: r for r in json.loads(output_json)}


def test_runs_lists_every_run_with_its_status(runs_root):
    result = cli("runs", runs_root)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for text in (
        "h8-",
        "h6-",
        "killed",
        "damaged",
        "finished",
        "incomplete",
        "broken",
        "sine numpy rnn",
        "H=8",
        "2/2",
        "val.loss",
        "test.loss",
    ):
        assert text in result.output, text
    assert "not-a-run" not in result.output
    assert "damaged: broken: config.toml unreadable" in result.output


def test_runs_json_has_metrics_settings_and_status(runs_root):
    runs = by_name(cli("runs", runs_root, "--json").output)
    assert set(runs) == {"h8", "h6", "killed", "damaged"}
    h8 = runs["h8"]
    assert h8["status"] == "finished" and h8["task"] == "sine" and h8["backend"] == "numpy"
    assert h8["epochs_run"] == 2 and h8["epochs"] == 2
    assert h8["hyper_parameters"]["hidden_size"] == 8 and h8["wall_seconds"] > 0
    assert set(h8["metrics"]) == {"train", "val", "test"} and h8["metrics"]["test"]["mse"] > 0
    assert runs["killed"]["status"] == "incomplete" and runs["killed"]["epochs_run"] == 1
    assert runs["killed"]["problem"] is None  # a torn last line is what a kill leaves
    assert runs["damaged"]["status"] == "broken" and "summary.json" in runs["damaged"]["problem"]


def test_runs_sort_by_a_metric_and_filter_by_task(runs_root):
    runs = json.loads(cli("runs", runs_root, "--json", "--sort", "test.mse").output)
    values = [r["metrics"]["test"]["mse"] for r in runs if r["metrics"]]
    assert values == sorted(values) and len(values) == 2
    assert [r["metrics"] for r in runs[2:]] == [{}, {}]  # runs without the metric go last
    reverse = json.loads(cli("runs", runs_root, "--json", "--sort", "test.mse", "--reverse").output)
    assert [r["metrics"]["test"]["mse"] for r in reverse[:2]] == values[::-1]
    table = cli("runs", runs_root, "--sort", "test.mse").output
    first, second = (r["name"] for r in runs[:2])
    assert "test.mse ▲" in table
    assert table.index(first) < table.index(second) < table.index("killed")
    assert {
        r["task"] for r in json.loads(cli("runs", runs_root, "--json", "--task", "sine").output)
    } == {"sine"}
    result = cli("runs", runs_root, "--task", "chargen")
    assert result.exit_code == 0 and "no runs of task 'chargen'" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sort", "mse"], "--sort 'mse': expected SPLIT.METRIC"),
        (["--sort", "test.nosuch"], "no run has this metric (available: train.loss"),
        (["--metrics", "bogus"], "--metrics 'bogus': expected SPLIT.METRIC"),
    ],
)
def test_runs_bad_keys_are_one_message(runs_root, args, message):
    result = cli("runs", runs_root, *args)
    assert result.exit_code == 2 and message in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_runs_narrow_terminal_drops_columns_not_rows(runs_root):
    result = CliRunner().invoke(main, ["runs", str(runs_root)], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert all(len(line) <= 80 for line in result.output.splitlines()[:8])
    assert "left out to fit" in result.output and "val.loss" in result.output


def test_every_command_on_an_empty_runs_folder(tmp_path):
    empty = tmp_path / "runs"
    empty.mkdir()
    result = cli("runs", empty)
    assert result.exit_code == 0 and f"no runs in {empty} yet" in result.output
    assert cli("runs", empty, "--json").output.strip() == "[]"
    result = cli("runs", tmp_path / "missing")
    assert result.exit_code == 0 and "does not exist" in result.output
    for args in (["show", empty], ["diff", empty, empty], ["plot", empty]):
        result = cli(*args)
        assert result.exit_code == 2, args
        assert (
            "not a run directory" in result.output
            or "no runs in" in result.output
            or "matplotlib" in result.output
        ), result.output
        assert "Traceback" not in result.output


def test_show_a_finished_run(runs_root):
    run = next(runs_root.glob("h8-*"))
    result = cli("show", run)
    assert result.exit_code == 0, result.output
    for text in (
        "finished",
        "2/2 epochs",
        "hidden_size=8",
        "metric",
        "forecast_mse",
        "loss per epoch (log scale)",
        "train loss",
        "val loss",
        "test split: forecast from the first",
    ):
        assert text in result.output, text


@pytest.mark.parametrize(
    "name,expected",
    [
        ("killed", ["incomplete", "no final metrics", "loss per epoch"]),
        ("damaged", ["broken", "config.toml unreadable", "no epochs recorded"]),
    ],
)
def test_show_a_partial_or_damaged_run(runs_root, name, expected):
    result = cli("show", runs_root / name)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, text


def test_diff_two_runs(runs_root):
    a, b = next(runs_root.glob("h8-*")), next(runs_root.glob("h6-*"))
    result = cli("diff", a, b)
    assert result.exit_code == 0, result.output
    assert "model.hidden_size" in result.output and "experiment.name" in result.output
    assert "train.epochs" not in result.output  # same in both
    assert "test.mse" in result.output and "B / A" in result.output
    data = json.loads(cli("diff", a, b, "--json").output)
    assert {"key": "model.hidden_size", "a": 8, "b": 6} in data["config"]
    assert data["metrics"]["test.mse"]["a"] != data["metrics"]["test.mse"]["b"]
    same = cli("diff", a, a)
    assert "the two configs are identical" in same.output


def test_diff_against_a_damaged_run_says_why(runs_root):
    result = cli("diff", next(runs_root.glob("h8-*")), runs_root / "damaged")
    assert result.exit_code == 0 and "B: config.toml unreadable" in result.output.replace("\n", "")


def test_find_runs_descends_into_a_sweep_folder(runs_root, tmp_path):
    sweep = tmp_path / "runs" / "my-sweep"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}")
    run = next(runs_root.glob("h8-*"))
    (sweep / "v0-s1").mkdir()
    for name in ("config.toml", "summary.json", "metrics.jsonl"):
        (sweep / "v0-s1" / name).write_text((run / name).read_text())
    (found,) = find_runs(tmp_path / "runs")
    assert found.name == "my-sweep/v0-s1" and found.status == "finished"


def test_read_history_notes_a_torn_line_in_the_middle(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    problems = []
    assert [r["epoch"] for r in read_history(tmp_path, problems)] == [1, 3]
    assert problems == ["metrics.jsonl line 2 unreadable"]


def test_line_chart_draws_both_series_on_a_log_axis():
    text = line_chart(
        {"a": ([1, 2, 3], [1.0, 0.1, 0.01]), "b": ([1, 2, 3], [0.0, 0.5, 0.05])}, width=20, height=6
    ).plain
    rows = text.splitlines()
    assert rows[0].strip().startswith("1 ┤") and "0.01 ┤" in rows[5]
    assert "*" in text and "o" in text  # the zero of b is left out, its other points drawn
    assert "* a" in text and "o b" in text
    assert "nothing to plot" in line_chart({"a": ([1], [0.0])}).plain


def test_without_matplotlib_runs_finish_and_say_how_to_get_plots(monkeypatch, tmp_path):
    monkeypatch.setattr(plots, "available", lambda: False)
    config = tmp_path / "small.toml"
    config.write_text(SMALL_SINE)
    result = cli("run", config, "--out", tmp_path / "runs", "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    assert "pip install 'rnnlab[plot]'" in result.output.replace("\n", "")
    (run,) = (tmp_path / "runs").iterdir()
    assert not list(run.glob("*.png"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["figures"]["files"] == []
    result = cli("plot", run)
    assert result.exit_code == 2 and "pip install 'rnnlab[plot]'" in result.output


def test_runs_reads_runs_in_the_current_folder_by_default(runs_root, monkeypatch):
    monkeypatch.chdir(runs_root.parent)
    (runs_root.parent / "runs").mkdir(exist_ok=True)
    result = CliRunner().invoke(main, ["runs"])
    assert result.exit_code == 0 and "no runs in runs yet" in result.output
    monkeypatch.chdir(runs_root)
    result = CliRunner().invoke(main, ["runs", "--json"])
    assert json.loads(result.output) == []  # runs_root/runs does not exist


def test_runs_metric_columns_can_be_chosen(runs_root):
    every = cli("runs", runs_root, "--metrics", "all").output
    assert all(k in every for k in ("val.rmse", "test.forecast_mse", "val.loss"))
    assert "train.loss" not in every
    chosen = cli("runs", runs_root, "--metrics", "test.rmse").output
    assert "test.rmse" in chosen and "val.loss" not in chosen
    narrow = (
        CliRunner()
        .invoke(main, ["runs", str(runs_root), "--metrics", "all"], env={"COLUMNS": "100"})
        .output
    )
    assert "val.loss" in narrow and "test.loss" in narrow  # validation columns go first
    assert "val.forecast_mse" not in narrow and "left out to fit" in narrow
