"""Experiment files: validation, defaults, overrides, and clear errors."""

import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import (
    apply_overrides,
    build_experiment,
    parse_override,
    plugin_files,
    read_toml,
)
from rnnlab.registry.manager import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry()


def load(path, registry, sets=()):
    raw = read_toml(path)
    origins = apply_overrides(raw, list(sets))
    return build_experiment(raw, registry, source=path, origins=origins)


def error_of(path, registry, sets=()) -> str:
    with pytest.raises(ConfigError) as info:
        load(path, registry, sets)
    return str(info.value)


def test_defaults_fill_every_table(small_sine, registry):
    exp = load(small_sine, registry)
    assert exp.experiment.name == "small" and exp.experiment.seed == 3
    assert exp.model.cell == "rnn" and exp.model.hidden_size == 8 and exp.model.layers == 1
    assert exp.train.backend == "numpy" and exp.train.optimizer == "adam"
    assert exp.task.options["window"] == 5 and exp.task.options["noise"] == 0.0
    tables = exp.to_dict()
    assert set(tables) == {"experiment", "task", "model", "train"}
    assert tables["task"]["name"] == "sine"


def test_set_overrides_any_key_with_validation(small_sine, registry):
    exp = load(
        small_sine,
        registry,
        ["train.epochs=7", "train.optimizer=sgd", "task.noise=0.5", "model.dtype=float32"],
    )
    assert (exp.train.epochs, exp.train.optimizer) == (7, "sgd")
    assert exp.task.options["noise"] == 0.5 and exp.model.dtype == "float32"
    message = error_of(small_sine, registry, ["train.epochs=0"])
    assert message.startswith("--set train.epochs=0: [train.epochs]") and "> 0" in message


def test_parse_override_reads_toml_values_and_bare_strings():
    assert parse_override("train.epochs=5") == ("train", "epochs", 5)
    assert parse_override("train.backend=numba") == ("train", "backend", "numba")
    assert parse_override('experiment.plugins=["a.py"]') == ("experiment", "plugins", ["a.py"])
    with pytest.raises(ConfigError, match="TABLE.KEY=VALUE"):
        parse_override("epochs=5")


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "[task]\nname = 'sine'\n[trian]\nepochs = 1\n",
            "[trian]: unknown table; did you mean 'train'?",
        ),
        (
            "[task]\nname = 'sine'\n[train]\nepoch = 1\n",
            "[train.epoch]: unknown key; did you mean 'epochs'?",
        ),
        (
            "[task]\nname = 'sine'\n[train]\nepochs = 'many'\n",
            "[train.epochs]: must be an integer, got 'many'",
        ),
        (
            "[task]\nname = 'sine'\n[model]\nhidden_size = -3\n",
            "[model.hidden_size]: must be > 0, got -3",
        ),
        (
            "[task]\nname = 'sine'\n[train]\nlearning_rate = 0\n",
            "[train.learning_rate]: must be > 0",
        ),
        ("[task]\nname = 'sin'\n", "[task.name]: unknown task 'sin'; did you mean 'sine'?"),
        ("[task]\nname = 'sine'\nwindw = 3\n", "[task.windw]: unknown key; did you mean 'window'?"),
        (
            "[task]\nname = 'sine'\n[train]\nbackend = 'numpyy'\n",
            "[train.backend]: unknown backend 'numpyy'; did you mean 'numpy'?",
        ),
        (
            "[task]\nname = 'sine'\n[train]\noptimizer = 'adma'\n",
            "[train.optimizer]: 'adma' is not valid; did you mean 'adam'?",
        ),
        ("[model]\ncell = 'rnn'\n", "[task.name]: missing key"),
        ("[task]\nname = 'sine'\n[train]\nkeep_best = 1\n", "must be true or false"),
    ],
)
def test_bad_files_name_file_table_and_key(tmp_path, registry, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    message = error_of(path, registry)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_malformed_toml_gives_line_and_column(tmp_path, registry):
    path = tmp_path / "broken.toml"
    path.write_text("[train]\nepochs = = 3\n")
    message = error_of(path, registry)
    assert "malformed TOML" in message and "line 2" in message and "column" in message


def test_missing_file(tmp_path, registry):
    assert error_of(tmp_path / "nope.toml", registry) == f"{tmp_path / 'nope.toml'}: no such file"


def test_plugin_paths_are_relative_to_the_experiment_file(tmp_path):
    raw = {"experiment": {"plugins": ["my_task.py", "sub/other.py"]}}
    assert plugin_files(raw, tmp_path / "x.toml") == [
        tmp_path / "my_task.py",
        tmp_path / "sub/other.py",
    ]
