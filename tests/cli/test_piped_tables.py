"""Off a terminal (a pipe, a file) a command's tables take the width they need: no value is cut
or wrapped to 80 columns. COLUMNS, when set, still sets the width."""

from __future__ import annotations

from click.testing import CliRunner

from rnnlab.cli import main

PLUGIN = "from rnnlab.hookspecs import hookimpl\n\n@hookimpl\ndef on_run_start(run):\n    pass\n"


def test_a_piped_plugins_table_keeps_every_value_whole(tmp_path):
    folder = tmp_path / ("a-folder-with-a-long-name-" * 4)
    folder.mkdir()
    plugin = folder / "tracker_with_a_long_name.py"
    plugin.write_text(PLUGIN)
    piped = CliRunner().invoke(main, ["plugins", "--plugin", str(plugin)], env={"COLUMNS": None})
    assert piped.exit_code == 0, piped.output
    assert str(plugin) in piped.output  # on one line, whole
    assert "…" not in piped.output
    narrow = CliRunner().invoke(main, ["plugins", "--plugin", str(plugin)], env={"COLUMNS": "80"})
    assert str(plugin) not in narrow.output  # wrapped to the width asked for
