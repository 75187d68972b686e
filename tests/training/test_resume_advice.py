"""The advice `resume` gives for a finished run works when followed: with a cosine schedule
(whose rates depend on train.epochs) it is a new run from the run's config.toml."""

from __future__ import annotations

import re

from click.testing import CliRunner

from rnnlab.cli import main
from tests.support.tiny_runs import write_tiny


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_advice_for_a_finished_cosine_run_works(tmp_path, monkeypatch):
    from rnnlab.display import figures

    monkeypatch.setattr(figures, "available", lambda: False)
    config = write_tiny(tmp_path)
    sets = ["--set", "train.schedule=cosine", "--set", "train.epochs=2"]
    assert cli("run", config, *sets, "--out", tmp_path / "runs").exit_code == 0
    [run] = (tmp_path / "runs").iterdir()
    refused = cli("resume", run)
    assert refused.exit_code == 2
    advice = " ".join(refused.output.split())
    command = re.search(r"rnnlab run (\S+) --set train.epochs=N", advice)
    assert command is not None, advice
    followed = cli("run", command.group(1), "--set", "train.epochs=3", "--out", tmp_path / "new")
    assert followed.exit_code == 0, followed.output
    assert cli("resume", run, "--set", "train.epochs=3").exit_code == 2  # as the advice says
