"""Progress as a log file or a pipe gets it: a line per epoch, a line while a long epoch runs,
a line when evaluation and the figures start, and times people read."""

import io
import time

import pytest
from click.testing import CliRunner
from rich.console import Console

from rnnlab.cli import main
from rnnlab.display import terminal
from tests.support.paths import EXPERIMENTS


@pytest.mark.parametrize(
    "seconds, shown",
    [
        (0.0123, "12.3 ms"),
        (0.9994, "999.4 ms"),
        (12.34, "12.3 s"),
        (179.9, "179.9 s"),
        (512.3488, "8m32s"),
        (7500, "2h05m"),
        (None, ""),
    ],
)
def test_durations_read_as_people_read_them(seconds, shown):
    assert terminal.duration(seconds) == shown


def record(epoch, seconds=512.3488):
    return {"epoch": epoch, "loss": 0.5, "val_loss": 0.25, "best_epoch": epoch, "seconds": seconds}


def test_a_long_epoch_is_not_silent_when_piped(monkeypatch):
    monkeypatch.setattr(terminal, "HEARTBEAT", 0.02)
    out = io.StringIO()
    console = Console(file=out, width=200)  # a file: no live bar
    with terminal.epoch_progress(console, 3) as show:
        deadline = time.monotonic() + 30
        while "epoch 1/3 still running" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        show(record(1))
        text = out.getvalue()
        while "epoch 2/3 still running" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = out.getvalue().splitlines()
    assert "epoch 1/3 still running: " in text
    assert "epoch 1/3  loss 0.5  val_loss 0.25  best 1  8m32s" in lines
    assert lines[0].startswith("epoch 1/3 still running: ") and lines[0].endswith(" ms so far")
    assert any(line.startswith("epoch 2/3 still running") for line in lines)
    assert not any("512348" in line for line in lines)
    # once the progress is closed nothing more is printed
    done = len(out.getvalue())
    time.sleep(0.1)
    assert len(out.getvalue()) == done


def test_evaluation_and_figures_are_announced(tmp_path):
    result = CliRunner().invoke(
        main,
        ["run", str(EXPERIMENTS / "sine.toml"), "--set", "train.epochs=1", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    evaluating = lines.index("evaluating the model on every split ...")
    writing = lines.index("writing the run's results and figures ...")
    assert lines[evaluating - 1].startswith("epoch 1/1") and writing == evaluating + 1
