"""An exception from plugin code (a task's build, metrics or demo, a backend's kernels, a hook)
is one message naming the plugin and its source file, exit status 2; a run that had started is
marked failed with the error in summary.json and its traceback in error.txt; --debug shows the
traceback."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.registry.failures import ERROR_TXT
from tests.support.tiny_runs import write_tiny

PLUGIN = """\
from rnnlab.hookspecs import hookimpl
from rnnlab.specs import BackendSpec, TaskSpec
from rnnlab_numpy.backend import NumpyBackend
from rnnlab_sine.task import OPTIONS, SineTask


class OldContract(SineTask):
    def build(self):  # written for another version of the contract
        return None


class RaisesInBuild(SineTask):
    def build(self, rng):
        raise TypeError("expected a str, got int")


class RaisesInMetrics(SineTask):
    def metrics(self, model, dataset, split):
        return {"ratio": 1 / 0}


class RaisesInDemo(SineTask):
    def demo(self, model, dataset, rng):
        raise KeyError("forecast")


class RaisesInFigure(SineTask):
    def figure(self, model, dataset, fig):
        raise ValueError("no axes")


class BrokenKernel(NumpyBackend):
    name = "broken"

    def layer_backward(self, cell, weights, cache, dhs):
        raise RuntimeError("kernel bug")


@hookimpl
def register_tasks():
    return [TaskSpec("old", OldContract, OPTIONS), TaskSpec("inbuild", RaisesInBuild, OPTIONS),
            TaskSpec("inmetrics", RaisesInMetrics, OPTIONS),
            TaskSpec("indemo", RaisesInDemo, OPTIONS),
            TaskSpec("infigure", RaisesInFigure, OPTIONS)]


@hookimpl
def register_backends():
    return [BackendSpec("broken", BrokenKernel, "raises in backward")]
"""

AT_END = """\
from rnnlab.hookspecs import hookimpl

@hookimpl
def on_run_end(summary):
    raise ConnectionError("tracker offline")
"""

CASES = {
    # name: (--set overrides, what the message names, whether the run directory exists)
    "old contract": (["task.name=old"], "in task 'old' build()", False),
    "build raises": (["task.name=inbuild"], "in task 'inbuild' build()", False),
    "metrics raise": (["task.name=inmetrics"], "in task 'inmetrics' metrics()", True),
    "demo raises": (["task.name=indemo"], "in task 'indemo' demo()", True),
    "kernel raises": (["train.backend=broken"], "in backend 'broken' layer_backward()", True),
}


@pytest.fixture
def setup(tmp_path):
    plugin = tmp_path / "mine.py"
    plugin.write_text(PLUGIN)
    return write_tiny(tmp_path), plugin, tmp_path / "runs"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("case", sorted(CASES))
def test_plugin_code_error_is_one_message_naming_plugin_and_file(setup, case):
    config, plugin, out = setup
    sets, what, started = CASES[case]
    args = ["run", config, "--plugin", plugin, "--out", out, "--set", "train.epochs=2"]
    for s in sets:
        args += ["--set", s]
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = result.output[result.output.index("error:") :]  # after any progress lines
    assert len(message.strip().splitlines()) <= 3, message  # one message (soft-wrapped)
    text = " ".join(message.split())
    assert text.startswith(f"error: plugin mine (file: {plugin}) failed {what} ({plugin}"), text
    runs = list(out.iterdir()) if out.exists() else []
    assert bool(runs) == started
    if started:
        [run] = runs
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "failed"
        assert summary["error"].startswith(f"plugin mine (file: {plugin}) failed {what}")
        assert f"the traceback is in {run / ERROR_TXT}" in text
        assert "Traceback (most recent call last)" in (run / ERROR_TXT).read_text()
        listed = json.loads(cli("runs", out, "--json").output)
        assert listed[0]["status"] == "failed" and what in listed[0]["problem"]
    debug = cli("--debug", *args)
    assert debug.exception is not None and not isinstance(debug.exception, SystemExit)


def test_on_run_end_failure_marks_the_summary(tmp_path):
    plugin = tmp_path / "tracker.py"
    plugin.write_text(textwrap.dedent(AT_END))
    result = cli(
        "run",
        write_tiny(tmp_path),
        "--plugin",
        plugin,
        "--out",
        tmp_path / "runs",
        "--set",
        "train.epochs=2",
    )
    assert result.exit_code == 2, result.output
    assert "plugin tracker (file:" in result.output and "on_run_end()" in result.output
    [run] = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "ConnectionError: tracker offline" in summary["error"]
    assert summary["metrics"]["test"]["loss"] > 0  # the results stand
    assert "ConnectionError" in (run / ERROR_TXT).read_text()


def test_a_resume_whose_task_now_fails_leaves_the_run_as_it_was(tmp_path):
    plugin = tmp_path / "mine.py"
    plugin.write_text(
        PLUGIN.replace(
            "class RaisesInBuild(SineTask):\n    def build",
            "class RaisesInBuild(SineTask):\n    def unused",
        )
    )
    config = write_tiny(tmp_path)
    stop = tmp_path / "stop.py"
    stop.write_text(
        "from rnnlab.hookspecs import hookimpl\n\n@hookimpl\n"
        "def on_epoch_end(epoch):\n    if epoch == 2:\n"
        "        raise KeyboardInterrupt\n"
    )
    first = cli(
        "run",
        config,
        "--plugin",
        plugin,
        "--plugin",
        stop,
        "--out",
        tmp_path / "runs",
        "--set",
        "task.name=inbuild",
    )
    assert first.exit_code == 130, first.output
    [run] = (tmp_path / "runs").iterdir()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != "run.lock"}
    changed = tmp_path / "v2" / "mine.py"  # the plugin changed: its build raises now (a new
    changed.parent.mkdir()  # path: this process has the old file imported already)
    changed.write_text(PLUGIN)
    result = cli("resume", run, "--plugin", changed)
    assert result.exit_code == 2, result.output
    assert "failed in task 'inbuild' build()" in " ".join(result.output.split())
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != "run.lock"} == before


def test_a_figure_that_fails_names_the_plugin_and_the_run_stands(setup):
    """A figure is not worth a run: the run finishes, and the note names the plugin."""
    pytest.importorskip("matplotlib")
    config, plugin, out = setup
    result = cli(
        "run",
        config,
        "--plugin",
        plugin,
        "--out",
        out,
        "--set",
        "train.epochs=1",
        "--set",
        "task.name=infigure",
    )
    assert result.exit_code == 0, result.output
    [run] = out.iterdir()
    note = json.loads((run / "summary.json").read_text())["figures"]["note"]
    assert note == (
        f"the task's figure was not drawn (plugin mine (file: {plugin}), {plugin}:29: "
        f"ValueError: no axes)"
    )
