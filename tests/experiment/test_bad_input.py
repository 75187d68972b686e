"""Bad input of every kind gives one clear message, exit status 2 and no traceback; --debug
shows the traceback."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import RnnlabError
from rnnlab.store.rundir import RunDir
from tests.support.tiny_runs import TINY, write_tiny


def rnnlab(*args: str, cwd=None):
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    return result


def assert_user_error(result, *words: str) -> None:
    text = result.output
    assert result.exit_code == 2, (result.exit_code, text, result.exception)
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) <= 4, text  # one message (click adds usage lines)
    for w in words:
        assert w in text, (w, text)


def edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


CONFIG_CASES = {
    # name: (change to the tiny file, words the message must contain)
    "malformed TOML": (("hidden_size = 8", "hidden_size = "), ("tiny.toml", "line 12, column")),
    "unknown table": (("[train]", "[trian]"), ("[trian]", "did you mean 'train'")),
    "unknown key": (
        ("hidden_size = 8", "hiden_size = 8"),
        ("[model.hiden_size]", "did you mean 'hidden_size'"),
    ),
    "wrong type": (("hidden_size = 8", 'hidden_size = "big"'), ("must be an integer",)),
    "size <= 0": (("hidden_size = 8", "hidden_size = 0"), ("[model.hidden_size]", "> 0")),
    "batch <= 0": (("batch_size = 16", "batch_size = -3"), ("[train.batch_size]", "> 0")),
    "lr <= 0": (("learning_rate = 0.02", "learning_rate = 0.0"), ("[train.learning_rate]",)),
    "lr not finite": (("learning_rate = 0.02", "learning_rate = nan"), ("finite",)),
    "window too long": (("window = 5", "window = 150"), ("[task.window]", "does not fit")),
    "fractions": (("window = 5", "window = 5\ntrain_fraction = 0.95"), ("val_fraction", "< 1")),
    "unknown task": (('name = "sine"', 'name = "sien"'), ("[task.name]", "sine")),
    "unknown backend": (("[train]", "[train]\nbackend = 'nunpy'"), ("[train.backend]", "numpy")),
    "unknown cell": (("[model]", "[model]\ncell = 'lsmt'"), ("[model.cell]", "'lstm'")),
    "unknown optimizer": (("[train]", "[train]\noptimizer = 'adma'"), ("did you mean 'adam'",)),
    "missing task": (('[task]\nname = "sine"', "[task]"), ("[task.name]", "missing")),
    "plugins not a list": (("seed = 3", "seed = 3\nplugins = 'x.py'"), ("experiment.plugins",)),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_experiment_file(tmp_path, case):
    (old, new), words = CONFIG_CASES[case]
    config = write_tiny(tmp_path, edit(TINY, old, new))
    assert_user_error(rnnlab("run", str(config), "--out", str(tmp_path / "runs")), *words)
    assert not (tmp_path / "runs").exists()  # nothing is created for a bad experiment


@pytest.mark.parametrize(
    "sets, words",
    [
        (["train.epochs"], ["expected TABLE.KEY=VALUE"]),
        (["epochs=3"], ["expected TABLE.KEY=VALUE"]),
        (["train.epochs=0"], ["--set train.epochs=0", "> 0"]),
        (["train.epochs=1.5"], ["must be an integer"]),
        (["trian.epochs=1"], ["did you mean 'train'"]),
        (["train.learning_rate=inf"], ["finite"]),
        (["model.layers=-1"], ["[model.layers]"]),
    ],
)
def test_bad_override(tmp_path, sets, words):
    config = write_tiny(tmp_path)
    args = ["run", str(config), "--out", str(tmp_path / "runs")]
    for s in sets:
        args += ["--set", s]
    assert_user_error(rnnlab(*args), *words)


def test_missing_directory_and_non_utf8_files(tmp_path):
    assert_user_error(rnnlab("run", str(tmp_path / "nope.toml")), "no such file")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"# caf\xe9\n")
    assert_user_error(rnnlab("run", str(latin)), "not UTF-8")
    assert_user_error(rnnlab("run", str(tmp_path)))  # a directory: click's own usage error


def test_out_is_a_file(tmp_path):
    config = write_tiny(tmp_path)
    assert_user_error(rnnlab("run", str(config), "--out", str(config)), str(config))


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(main, ["--debug", "run", str(tmp_path / "nope.toml")])
    assert isinstance(result.exception, RnnlabError)


@pytest.fixture
def finished_run(tmp_path):
    config = write_tiny(tmp_path)
    result = rnnlab("run", str(config), "--set", "train.epochs=2", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "runs").iterdir()
    return path


def test_resume_what_is_not_a_run(tmp_path, finished_run):
    assert_user_error(rnnlab("resume", str(tmp_path / "nope")), "no such run directory")
    assert_user_error(rnnlab("resume", str(tmp_path)), "not a run directory")
    assert_user_error(rnnlab("run", "--resume", str(tmp_path)), "not a run directory")
    assert_user_error(rnnlab("run"), "CONFIG")
    assert_user_error(rnnlab("resume", str(finished_run)), "already finished", "train.epochs")
    (finished_run / "checkpoint.npz").unlink()
    assert_user_error(rnnlab("resume", str(finished_run)), "no checkpoint")


def damaged(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flipped":  # one byte inside the data of the first array member
        data = bytearray(data)
        data[200] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not a checkpoint")


@pytest.mark.parametrize("how", ["truncated", "flipped", "empty", "text"])
def test_damaged_checkpoint_and_params(tmp_path, finished_run, how):
    damaged(finished_run / "checkpoint.npz", how)
    assert_user_error(
        rnnlab("resume", str(finished_run), "--set", "train.epochs=3"),
        "checkpoint.npz",
        "corrupted checkpoint",
    )
    damaged(finished_run / "params.npz", how)
    with pytest.raises(RnnlabError, match="corrupted parameter file"):
        RunDir(finished_run).load_params()


def test_changed_experiment_file_is_refused_on_resume(tmp_path, finished_run):
    other = tmp_path / "other"
    other.mkdir()
    config = write_tiny(other, edit(TINY, "learning_rate = 0.02", "learning_rate = 0.05"))
    assert_user_error(
        rnnlab("run", str(config), "--resume", str(finished_run)),
        "train.learning_rate: 0.02 -> 0.05",
        "start a new run",
    )
    assert_user_error(
        rnnlab("resume", str(finished_run), "--set", "train.epochs=1"), "2 epochs done"
    )


def test_run_directory_copied_elsewhere_still_resumes(tmp_path, finished_run):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    result = rnnlab("resume", str(copy), "--set", "train.epochs=3", "--json")
    assert result.exit_code == 0, result.output
    with np.load(copy / "params.npz") as data:
        assert all(np.all(np.isfinite(data[k])) for k in data.files)
