"""A run remembers the plugin files it was made with (path and sha256 in summary.json), so the
commands that read it back find them without ``--plugin``, and say so when a file moved or
changed."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import rnnlab
from rnnlab.cli import main
from tests.nn.test_lengths import EXPERIMENT
from tests.support.paths import SUPPORT


def made_with_a_plugin(tmp_path):
    plugin = tmp_path / "plugins" / "varlen_task.py"
    plugin.parent.mkdir()
    shutil.copy(SUPPORT / "varlen_task.py", plugin)
    path = tmp_path / "varlen.toml"
    path.write_text(EXPERIMENT.format(target="last", cell="rnn"))
    args = ["run", str(path), "--plugin", str(plugin), "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(main, [*args, "--set", "train.epochs=1"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir, plugin


def test_the_summary_records_each_plugin_file_with_its_hash(tmp_path):
    run_dir, plugin = made_with_a_plugin(tmp_path)
    (record,) = json.loads((run_dir / "summary.json").read_text())["plugin_files"]
    assert record["path"] == str(plugin.resolve()) and len(record["sha256"]) == 64


def test_commands_find_the_plugin_file_without_being_told(tmp_path):
    run_dir, _ = made_with_a_plugin(tmp_path)
    result = CliRunner().invoke(main, ["show", str(run_dir)])
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    run = rnnlab.load(run_dir)
    x = np.zeros((4, 2, run.model.input_size))
    assert run.model.predict(x).shape[0] == 2


def test_a_moved_plugin_file_is_named_with_the_way_to_give_its_new_place(tmp_path):
    run_dir, plugin = made_with_a_plugin(tmp_path)
    moved = plugin.rename(tmp_path / "varlen_task.py")
    args = ["export", str(run_dir), "--format", "safetensors", "--out", str(tmp_path / "m")]
    result = CliRunner().invoke(main, args)
    assert "not there any more; give its new place with --plugin PATH" in result.output
    assert str(plugin.resolve()) in result.output
    with pytest.warns(UserWarning, match="not there any more"), pytest.raises(rnnlab.RnnlabError):
        rnnlab.load(run_dir).model  # noqa: B018  (the task is needed for its sizes)
    given = rnnlab.load(run_dir, plugins=[moved])
    assert given.model.input_size > 0


def test_a_changed_plugin_file_is_a_warning(tmp_path):
    run_dir, plugin = made_with_a_plugin(tmp_path)
    plugin.write_text(plugin.read_text() + "\n# edited after the run\n")
    with pytest.warns(UserWarning, match="changed since the run was made"):
        rnnlab.load(run_dir).model  # noqa: B018
