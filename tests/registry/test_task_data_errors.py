"""A task whose data rnnlab cannot train on (here: float targets for cross-entropy) is refused
at the start of the run with one message naming the plugin, as rnnlab.testing.check_task would;
a ValueError inside a task's build is the plugin's bug, reported with its file and line, not
blamed on the user's [task] values."""

from __future__ import annotations

from click.testing import CliRunner

from rnnlab.cli import main
from tests.support.tiny_runs import write_tiny

PLUGIN = """\
import numpy as np
from rnnlab.hookspecs import hookimpl
from rnnlab.specs import Dataset, Split, TaskSpec
from rnnlab_sine.task import OPTIONS, SineTask


class FloatClasses(SineTask):
    def build(self, rng):
        def split(n):
            return Split(rng.normal(size=(4, n, 2)), rng.integers(0, 3, n).astype(float))

        data = {"train": split(16), "val": split(4), "test": split(4)}
        return Dataset(data, 2, 3, "xent", "last")


class Buggy(SineTask):
    def build(self, rng):
        return int("not a number")


@hookimpl
def register_tasks():
    return [TaskSpec("floaty", FloatClasses, OPTIONS), TaskSpec("buggy", Buggy, OPTIONS)]
"""


def run(tmp_path, task: str):
    plugin = tmp_path / "mine.py"
    plugin.write_text(PLUGIN)
    args = ["run", write_tiny(tmp_path), "--plugin", plugin, "--out", tmp_path / "runs"]
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--set", f"task.name={task}"]])
    return result, " ".join(result.output.split()), plugin


def test_data_of_the_wrong_dtype_names_the_plugin_before_training(tmp_path):
    result, text, plugin = run(tmp_path, "floaty")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"plugin mine (file: {plugin}): task 'floaty', split 'train': y must hold" in text
    assert "split 'train': y must hold integer class indices for xent, got dtype float64" in text
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_a_value_error_in_build_is_the_plugins_bug_with_its_line(tmp_path):
    result, text, plugin = run(tmp_path, "buggy")
    assert result.exit_code == 2, result.output
    assert f"plugin mine (file: {plugin}) failed in task 'buggy' build() ({plugin}:18)" in text
    assert "ValueError: invalid literal" in text
    assert "check the [task] values" not in text
