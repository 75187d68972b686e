"""A data file a task reads must be a regular file of bounded size: a FIFO (which would wait
forever for a writer), a device such as /dev/zero (which never ends) or a file beyond the limit
is refused at once with one message naming the file; a missing file's message names the folder
it was looked for in."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.experiment.datafiles import read_data, read_text


def refused(path: Path, **kwargs) -> str:
    """The message reading ``path`` gives, from a thread, so that a read that would block
    forever fails the test instead of hanging it."""
    outcome = {}

    def read():
        try:
            read_data(path, **kwargs)
        except ConfigError as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), f"reading {path} blocked"
    error = outcome.get("error")
    assert error is not None and (error.table, error.key) == ("task", "path")
    assert str(path) in str(error)
    return str(error)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    assert "is a named pipe (FIFO), not a regular file" in refused(fifo)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_link_to_an_endless_device_is_refused(tmp_path):
    link = tmp_path / "data.csv"
    link.symlink_to("/dev/zero")
    assert "is a character device, not a regular file" in refused(link)


def test_a_file_beyond_the_limit_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * 100)
    assert "holds 100 bytes, more than the 10 a data file may hold" in refused(big, limit=10)
    assert read_data(big, limit=100) == b"x" * 100


def test_a_missing_file_names_the_folder_it_was_looked_for_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        read_text(Path("data") / "nope.csv")
    assert f"no such file (looked in {tmp_path / 'data'})" in str(info.value)


def test_a_run_whose_data_path_is_a_fifo_ends_in_one_message(tmp_path):
    os.mkfifo(tmp_path / "corpus.txt")
    config = tmp_path / "char.toml"
    config.write_text(
        '[experiment]\nname = "c"\n[task]\nname = "chargen"\npath = "corpus.txt"\n'
        "[train]\nepochs = 1\n"
    )
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "[task.path]" in text and "is a named pipe (FIFO), not a regular file" in text, text
