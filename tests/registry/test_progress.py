"""What a backend prepares is said as it goes: a line when it starts (with where it is kept),
lines while it lasts, a line with its time when it ends; nothing outside a listener."""

import io
import threading
import time

import pytest
from rich.console import Console

from rnnlab.display import terminal
from rnnlab.plugin import preparing
from rnnlab.registry.progress import listening


def test_nothing_is_said_without_a_listener():
    ran = []
    with preparing("compiling the kernels"):
        ran.append(True)
    assert ran == [True]


def test_start_progress_and_end_are_said_with_the_source():
    said = []
    with listening(said.append, "backend 'x'") as done:
        with preparing("compiling the kernels", "once per machine", every=0.02):
            deadline = time.monotonic() + 30
            while not any("still" in s for s in said) and time.monotonic() < deadline:
                time.sleep(0.01)
    assert said[0] == "backend 'x': compiling the kernels (once per machine) ..."
    assert said[1].startswith("backend 'x': still compiling the kernels: ")
    assert said[1].endswith(" so far")
    assert said[-1].startswith("backend 'x': done compiling the kernels in ")
    assert [task for task, _ in done] == ["compiling the kernels"]
    assert not any(t.name == "rnnlab-preparing" for t in threading.enumerate())


def test_a_failed_preparation_says_no_done_line_and_is_not_listed():
    said = []
    with listening(said.append, "backend 'x'") as done:
        with pytest.raises(ValueError), preparing("compiling the kernels"):
            raise ValueError("broken")
    assert said == ["backend 'x': compiling the kernels ..."]
    assert done == []


def test_the_innermost_listener_hears_and_none_after_the_block():
    outer, inner = [], []
    with listening(outer.append, "a"):
        with listening(inner.append, "b"), preparing("step"):
            pass
    with preparing("after"):
        pass
    assert outer == [] and [s.split(":")[0] for s in inner] == ["b", "b"]


def test_status_lines_keep_the_epoch_heartbeat_quiet(monkeypatch):
    """While a backend compiles before epoch 1, its own lines stand for progress: the epochs'
    heartbeat does not add "epoch 1/3 still running" to them."""
    monkeypatch.setattr(terminal, "HEARTBEAT", 0.1)
    out = io.StringIO()
    console = Console(file=out, width=200)
    with terminal.epoch_progress(console, 3):
        for _ in range(8):
            terminal.status_line(console, "backend 'x': still compiling")
            time.sleep(0.03)
    assert "still running" not in out.getvalue()
    assert out.getvalue().count("still compiling") == 8
