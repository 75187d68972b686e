"""`rnnlab sweep` on the command line, and executors from plugins through register_executors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rnnlab.cli import main
from tests.support.readonly import freezable_folder
from tests.support.sweeps import write_sweep

GRID = 'seeds = [0, 1]\n"model.hidden_size" = [3, 5]\n'

PLUGIN = """
from rnnlab.executors import ExecutorSpec
from rnnlab.executors.serial import SerialExecutor
from rnnlab.hookspecs import hookimpl


class LastFirst(SerialExecutor):
    name = "last-first"

    def run(self, fn, jobs, started):
        yield from super().run(fn, list(reversed(jobs)), started)


@hookimpl
def register_executors():
    return [ExecutorSpec("{name}", lambda options: LastFirst(), "the last run first")]
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_json_report_of_a_serial_sweep(tmp_path):
    path = write_sweep(tmp_path, GRID)
    result = invoke("sweep", path, "--workers", 1, "--out", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["executor"] == "serial (this process)" and report["seeds"] == [0, 1]
    assert [len(report["variants"]), len(report["runs"])] == [2, 4]
    row = report["variants"][0]
    assert set(row["metrics"]) == {"train", "val", "test"}
    assert row["metrics"]["test"]["rmse"]["n"] == 2 and row["seconds_per_epoch"]["n"] == 2
    again = invoke("sweep", path, "--workers", 1, "--out", tmp_path / "runs", "--json")
    assert all(r["previous"] for r in json.loads(again.stdout)["runs"])


def test_table_report_and_exit_status_1_when_a_run_failed(tmp_path):
    path = write_sweep(tmp_path, 'seeds = [0]\n"task.window" = [5, 500]\n')
    result = invoke("sweep", path, "--workers", 1, "--out", tmp_path / "runs")
    assert result.exit_code == 1
    out = " ".join(result.output.split())  # a title wraps at the table's width
    assert "mean ± std over seeds, best val loss first" in out and "test metrics" in out
    assert "failed runs" in out and "window 500" in out
    assert "[1/2] v00_window-5_seed-0 finished" in out  # one line per run off a terminal


def test_usage_errors_exit_2_without_a_traceback(tmp_path):
    path = write_sweep(tmp_path, GRID)
    result = invoke("run", path)
    assert result.exit_code == 2 and "run it with `rnnlab sweep`" in result.output
    result = invoke("sweep", path, "--dask", "tcp://127.0.0.1:1", "--workers", 2)
    assert result.exit_code == 2 and "--workers sets the size of a local cluster" in result.output
    result = invoke("sweep", path, "--executor", "slurm", "--out", tmp_path / "runs")
    assert result.exit_code == 2 and "unknown executor 'slurm'" in result.output
    assert "Traceback" not in result.output


def test_hook_register_executors(tmp_path):
    plugin = tmp_path / "last_first.py"
    plugin.write_text(PLUGIN.replace("{name}", "last-first"))
    path = write_sweep(tmp_path, GRID)
    result = invoke(
        "sweep", path, "--executor", "last-first", "--plugin", plugin, "--out", tmp_path / "runs"
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    assert lines[0].startswith("[1/4] v01_hidden_size-5_seed-1 finished")


def test_hook_register_executors__a_built_in_name_cannot_be_taken(tmp_path):
    plugin = tmp_path / "impostor.py"
    plugin.write_text(PLUGIN.replace("{name}", "local"))
    path = write_sweep(tmp_path, GRID)
    result = invoke("sweep", path, "--plugin", plugin, "--out", tmp_path / "runs")
    assert result.exit_code == 2
    assert "executor 'local' is provided by more than one plugin" in result.output
    assert "impostor" in result.output and "rnnlab.executors" in result.output


def test_a_bad_set_is_blamed_on_the_set_not_the_file(tmp_path):
    path = write_sweep(tmp_path, GRID)
    result = invoke("sweep", path, "--set", "train.batch_size=0", "--out", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert "--set train.batch_size=0" in result.output and "[train.batch_size]" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_sweep_on_a_read_only_folder_is_one_message(tmp_path):
    path = write_sweep(tmp_path, GRID)
    with freezable_folder(tmp_path / "mount") as (out, freeze):
        assert invoke("sweep", path, "--workers", 1, "--out", out).exit_code == 0
        freeze()
        result = invoke("sweep", path, "--workers", 1, "--out", out)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "cannot open the sweep's lock file" in text and "must be writable" in text, text
    assert "Traceback" not in result.output and result.exception is not None


def test_a_sweep_into_a_loop_of_symlinks_is_one_message(tmp_path):
    path = write_sweep(tmp_path, GRID)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for out in (tmp_path / "a", tmp_path / "a" / "deeper"):
        result = invoke("sweep", path, "--workers", 1, "--out", out)
        assert result.exit_code == 2, result.output
        assert "cannot use this folder (a loop of symlinks)" in " ".join(result.output.split())
