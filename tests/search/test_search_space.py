"""The [search] table is checked before anything starts: one line naming the file and key."""

import pytest
from click.testing import CliRunner

from rnnlab.cli import main

pytest.importorskip("optuna")

BASE = """
[experiment]
name = "tiny"
[task]
name = "sine"
points = 120
window = 5
[model]
hidden_size = 4
[train]
epochs = 2
batch_size = 16
[search]
{search}
[search.space]
{space}
"""
GOOD_SPACE = '"model.hidden_size" = { int = [2, 8] }'


@pytest.mark.parametrize(
    "search, space, where, words",
    [
        ("trials = 0", GOOD_SPACE, "[search.trials]", "integer >= 1"),
        ("trials = 4\nmetric = 'loss'", GOOD_SPACE, "[search.metric]", "SPLIT.METRIC"),
        ("trials = 4\nsampler = 'tpee'", GOOD_SPACE, "[search.sampler]", "did you mean 'tpe'"),
        ("trials = 4\npruner = 'asha2'", GOOD_SPACE, "[search.pruner]", "not one of"),
        ("trials = 4\ndirection = 'down'", GOOD_SPACE, "[search.direction]", "minimize"),
        ("trials = 4\nseeds = [1, 1]", GOOD_SPACE, "[search.seeds]", "distinct"),
        ("trials = 4\ntrails = 3", GOOD_SPACE, "[search.trails]", "did you mean 'trials'"),
        ("trials = 4\nstorage = 'study.db'", GOOD_SPACE, "[search.storage]", "sqlite:///"),
        ("trials = 4\npruner = 'wilcoxon'", GOOD_SPACE, "[search.pruner]", "at least 2 seeds"),
        (
            "trials = 4\npruner = 'median'\nmetric = 'test.mse'",
            GOOD_SPACE,
            "[search.pruner]",
            "epoch by epoch",
        ),
        ("trials = 4\nsampler = 'grid'", GOOD_SPACE, '[search.space."model.hidden_size"]', "grid"),
        (
            "trials = 9\nsampler = 'grid'",
            '"model.cell" = ["rnn", "gru"]',
            "[search.trials]",
            "2 points",
        ),
        ("trials = 4", "", "[search.space]", "needs a [search.space]"),
        ("trials = 4", '"model.hidden_size" = { int = [8, 2] }', '"model.hidden_size"]', "below"),
        (
            "trials = 4",
            '"model.hidden_size" = { int = [0, 8], log = true }',
            "hidden_size",
            "LOW > 0",
        ),
        ("trials = 4", '"model.hidden_size" = { int = [2.5, 8] }', "hidden_size", "integers"),
        ("trials = 4", '"model.hidden_size" = { range = [2, 8] }', "hidden_size", "exactly one"),
        ("trials = 4", '"model.hidden_size" = { int = [2, 8], lg = true }', "hidden_size", "'log'"),
        ("trials = 4", '"model.hidden_size" = { int = [0, 8] }', "hidden_size", "value 0"),
        ("trials = 4", '"model.cell" = ["rnn", "nope"]', '[search.space."model.cell"]', "'nope'"),
        ("trials = 4", '"model.nope" = [1, 2]', '[search.space."model.nope"]', "value 1"),
        ("trials = 4", '"experiment.seed" = [1, 2]', "[search.space]", "cannot vary"),
        ("trials = 4", '"modl.cell" = ["rnn"]', "[search.space]", "TABLE.KEY"),
    ],
)
def test_a_bad_search_table_is_one_line_naming_file_and_key(tmp_path, search, space, where, words):
    path = tmp_path / "bad.toml"
    path.write_text(BASE.format(search=search, space=space))
    result = CliRunner().invoke(main, ["search", str(path), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1, line
    assert str(path) in line and where in line and words in line, line
    assert not (tmp_path / "runs").exists()  # refused before anything started
