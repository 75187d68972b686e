"""`rnnlab matrix` on a tiny sweep (adding, 2 cells x 2 lengths x 2 seeds, one epoch): solve
rates and Wilson intervals against counts taken by hand from the runs' summaries; the rule a
task declares used when none is given, the file's [stats] rule over it; the Markdown header;
and what a task may declare."""

import json
import math
import shutil
import statistics

import pytest
from click.testing import CliRunner

from rnnlab.analysis.declared import as_threshold
from rnnlab.analysis.matrix import cell_name, swept_task_keys
from rnnlab.cli import main
from rnnlab.errors import PluginError
from rnnlab.plugin import Task

SWEEP = """
[experiment]
name = "tiny_matrix"

[task]
name = "adding"
length = 4
train_size = 32
val_size = 16
test_size = 16

[model]
cell = "rnn"
hidden_size = 4

[train]
backend = "numpy"
epochs = 1
batch_size = 16

[sweep]
seeds = [0, 1]
"task.length" = [4, 6]

[[sweep.variants]]
"model.cell" = "rnn"

[[sweep.variants]]
"model.cell" = "lstm"
"model.forget_bias" = 1.0
"""
Z = 1.959963984540054


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    path = root / "tiny_matrix.toml"
    path.write_text(SWEEP)
    done = CliRunner().invoke(main, ["sweep", str(path), "--workers", "1", "--out", str(root)])
    assert done.exit_code == 0, done.output
    return root / "tiny_matrix"


def by_hand(directory):
    """(cell, length) -> [summary per seed], read straight from the run directories."""
    record = json.loads((directory / "sweep.json").read_text())
    variants = [v["config"] for v in record["variants"]]  # a run names its variant by index
    out = {}
    for run in record["runs"]:
        config = variants[run["variant"]]
        key = (config["model"]["cell"], config["task"]["length"])
        summary = json.loads((directory / run["run"] / "summary.json").read_text())
        out.setdefault(key, []).append(summary)
    return out


def wilson_by_hand(k, n):
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return [0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half]


def matrix_json(*args):
    done = CliRunner().invoke(main, ["matrix", *map(str, args), "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def test_solve_rates_and_wilson_intervals_from_counts(sweep):
    runs = by_hand(sweep)
    mse = sorted(s["metrics"]["test"]["mse"] for group in runs.values() for s in group)
    cut = (mse[3] + mse[4]) / 2  # half the runs below: counts of 0, 1 and 2 out of 2 likely
    rows = matrix_json(sweep, "--solved", f"test.mse < {cut!r}")
    assert [(r["task"], r["swept"], r["cell"]) for r in rows] == [
        ("adding", "length=4", "rnn"),
        ("adding", "length=4", "lstm forget_bias=1.0"),
        ("adding", "length=6", "rnn"),
        ("adding", "length=6", "lstm forget_bias=1.0"),
    ]
    assert sum(r["solve_rate"]["solved"] for r in rows) == 4
    for row in rows:
        group = runs[(row["cell"].split()[0], int(row["swept"].split("=")[1]))]
        k = sum(s["metrics"]["test"]["mse"] < cut for s in group)
        assert (row["solve_rate"]["solved"], row["solve_rate"]["n"]) == (k, 2)
        assert row["solve_rate"]["rate"] == k / 2
        assert row["solve_rate"]["ci"] == pytest.approx(wilson_by_hand(k, 2), abs=1e-12)
        assert row["solved_from"] == "command line"
        assert row["metric"] == "test.mse"
        assert row["median"] == statistics.median(s["metrics"]["test"]["mse"] for s in group)
        assert row["wall_seconds"] == pytest.approx(
            statistics.fmean(s["wall_seconds"] for s in group)
        )
        assert row["cpu_seconds"] == pytest.approx(
            statistics.fmean(s["cpu_seconds"] for s in group)
        )
        assert row["load"] == statistics.median(s["load_average"][0] for s in group)
        assert row["backend"] == "numpy"


def test_the_rule_the_task_declares_applies_when_none_is_given(sweep):
    runs = by_hand(sweep)
    rows = matrix_json(sweep)
    for row in rows:
        assert (row["solved"], row["solved_from"]) == ("test.mse < 0.01", "task")
        group = runs[(row["cell"].split()[0], int(row["swept"].split("=")[1]))]
        k = sum(s["metrics"]["test"]["mse"] < 0.01 for s in group)
        assert row["solve_rate"]["solved"] == k
    pytest.importorskip("scipy")
    done = CliRunner().invoke(main, ["stats", str(sweep), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert (result["solved"], result["solved_from"]) == ("test.mse < 0.01", "task")
    assert all(v["solve_rate"]["n"] == 2 for v in result["variants"])


def test_the_files_stats_rule_overrides_the_tasks(sweep, tmp_path):
    copy = tmp_path / "with_rule"
    shutil.copytree(sweep, copy)
    record = json.loads((copy / "sweep.json").read_text())
    record["stats"]["solved"] = "test.mse < 1000"  # as `[stats] solved = ...` records it
    (copy / "sweep.json").write_text(json.dumps(record))
    rows = matrix_json(copy)
    assert {(r["solved"], r["solved_from"]) for r in rows} == {("test.mse < 1000", "[stats]")}
    assert [r["solve_rate"]["solved"] for r in rows] == [2, 2, 2, 2]
    # and the command line's over the file's
    rows = matrix_json(copy, "--solved", "test.mse < 0")
    assert [r["solve_rate"]["solved"] for r in rows] == [0, 0, 0, 0]


def test_markdown_names_command_date_machine_and_versions(sweep, tmp_path):
    page = tmp_path / "matrix.md"
    done = CliRunner().invoke(main, ["matrix", str(sweep), "--markdown", str(page)])
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert text.startswith("# Results matrix\n")
    assert f"Generated by `rnnlab matrix {sweep} --markdown {page}` on " in text
    assert "- Machine: " in text and "logical cores" in text
    assert "- BLAS: " in text and "thread" in text and "(runs); here OPENBLAS_NUM_THREADS=" in text
    assert "- Versions the runs recorded: python " in text and "rnnlab " in text
    assert "adding: test.mse < 0.01 (declared by the task)" in text
    table = [line for line in text.splitlines() if line.startswith("| adding |")]
    assert len(table) == 4 and "| length=6 | lstm forget_bias=1.0 | 2 |" in table[3]


def test_markdown_goes_between_the_markers_of_a_page_and_the_rest_stays(sweep, tmp_path):
    page = tmp_path / "results.md"
    before = "# My results\n\nWhat the papers say.\n\n<!-- rnnlab matrix -->\n"
    after = "<!-- /rnnlab matrix -->\n\nWhat we measured, in words.\n"
    page.write_text(before + "an old table\n" + after)
    for _ in range(2):  # and again over its own output: the same page
        done = CliRunner().invoke(main, ["matrix", str(sweep), "--markdown", str(page)])
        assert done.exit_code == 0, done.output
        text = page.read_text()
        assert text.startswith(before) and text.endswith(after)
        assert "an old table" not in text and "# Results matrix" not in text
        assert "- Load: the 1-minute load average" in text
        assert len([line for line in text.splitlines() if line.startswith("| adding |")]) == 4
    page.write_text("# Only a start marker\n\n<!-- rnnlab matrix -->\n")
    done = CliRunner().invoke(main, ["matrix", str(sweep), "--markdown", str(page)])
    assert done.exit_code == 0, done.output
    assert page.read_text().startswith("# Results matrix\n")  # no pair: the whole file


def test_a_run_records_its_cpu_time_and_the_machines_load(sweep):
    for group in by_hand(sweep).values():
        for summary in group:
            assert 0 < summary["cpu_seconds"]
            assert len(summary["load_average"]) == 3
            assert all(x >= 0 for x in summary["load_average"])


def test_a_sweep_at_one_setting_beside_one_over_settings_names_its_setting(sweep, tmp_path):
    one = tmp_path / "one_length"
    shutil.copytree(sweep, one)
    record = json.loads((one / "sweep.json").read_text())
    for variant in record["variants"]:  # as if no variant set the length: the file's own
        variant["overrides"].pop("task.length")
    (one / "sweep.json").write_text(json.dumps(record))
    assert {r["swept"] for r in matrix_json(one)} == {"—"}
    rows = matrix_json(sweep, one)
    assert [r["swept"] for r in rows] == ["length=4"] * 4 + ["length=6"] * 4  # setting, sweep
    assert [r["directory"] for r in rows] == [str(sweep), str(sweep), str(one), str(one)] * 2


def test_a_search_or_other_directory_is_refused(tmp_path):
    done = CliRunner().invoke(main, ["matrix", str(tmp_path)])
    assert done.exit_code != 0
    assert "not a sweep" in done.output and "sweep.json" in done.output


def test_swept_task_option_and_cell_names():
    grid = {
        "v0": {"model.cell": "rnn", "task.length": 200, "task.train_size": 10000},
        "v1": {
            "model.cell": "lstm",
            "model.chrono_tmax": 200,
            "task.length": 200,
            "task.train_size": 10000,
        },
        "v2": {"model.cell": "rnn", "task.length": 400, "task.train_size": 5000},
    }
    assert swept_task_keys(grid) == ["task.length", "task.train_size"]
    same = {"v0": {"model.cell": "rnn", "task.length": 50}, "v1": {"task.length": 50}}
    assert swept_task_keys(same) == []
    config = {"model": {"cell": "lstm"}}
    assert cell_name(config, grid["v1"]) == "lstm chrono_tmax=200"


def test_what_a_task_may_declare():
    assert Task.solved is None
    rule = as_threshold(("recall_acc", ">=", 0.99), "copy", "copy")
    assert str(rule) == "test.recall_acc >= 0.99"
    assert as_threshold(None, "p", "t") is None
    for bad in (("acc", "=>", 0.9), ("acc", ">="), ("acc", ">=", "0.9"), (1, "<", 2)):
        with pytest.raises(PluginError, match=r"plugin p: task 't' declares solved"):
            as_threshold(bad, "p", "t")
