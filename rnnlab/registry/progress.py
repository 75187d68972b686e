"""What a plugin is preparing while the core waits for it (a backend compiling its kernels),
told to whoever shows the run's status.

A backend wraps each long preparation in :func:`preparing`::

    with preparing("compiling the training epoch (rnn, float64)", "once per machine"):
        ...

The core listens (:func:`listening`) around the calls that may prepare something
(``Backend.warm_up`` and ``Backend.epoch_runner``; ``rnnlab warm-up`` around all of a
backend's warm-up) and turns each block into status lines: one when it starts (with the
note), one every :data:`EVERY` seconds while it lasts, so that a log written to a file or a
pipe never falls silent, and one when it ends, with its time. Outside :func:`listening` (a
backend used directly from Python) :func:`preparing` only runs its block.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# seconds between two "still ..." lines of one preparation
EVERY = 15.0

_lock = threading.Lock()
_listeners: list[Callable[[str], None]] = []
# what the blocks that ran under the innermost listener did: (task, seconds)
_done: list[list[tuple[str, float]]] = []


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 180 else f"{int(value // 60)}m{round(value % 60):02d}s"


@contextmanager
def listening(status: Callable[[str], None] | None, source: str) -> Iterator[list]:
    """While the block runs, every :func:`preparing` in this process speaks through
    ``status(message)``, each message starting with ``source`` (``"backend 'numba'"``).
    Yields the list of ``(task, seconds)`` of the preparations that ended meanwhile (filled as
    they end). ``status`` None: nothing is said, the list is still filled."""

    def say(message: str) -> None:
        if status is not None:
            status(f"{source}: {message}")

    done: list[tuple[str, float]] = []
    with _lock:
        _listeners.append(say)
        _done.append(done)
    try:
        yield done
    finally:
        with _lock:
            _listeners.remove(say)
            _done.remove(done)


@contextmanager
def preparing(task: str, note: str = "", every: float | None = None) -> Iterator[None]:
    """Say that ``task`` (``"compiling the training epoch (rnn, float64)"``) starts, with
    ``note`` (``"once per machine: kept in ~/.cache/..."``); every ``every`` seconds (default
    :data:`EVERY`) that it is still running; and when it ends, how long it took. For plugins
    (``rnnlab.plugin.preparing``): a backend wraps each compilation in it."""
    with _lock:
        say = _listeners[-1] if _listeners else None
        done = _done[-1] if _done else None
    if say is None:
        yield
        return
    interval = EVERY if every is None else every
    started, finished = time.monotonic(), threading.Event()
    say(f"{task}" + (f" ({note})" if note else "") + " ...")

    def beat() -> None:
        while not finished.wait(interval):
            say(f"still {task}: {_seconds(time.monotonic() - started)} so far")

    ticker = threading.Thread(target=beat, name="rnnlab-preparing", daemon=True)
    ticker.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        finished.set()
        ticker.join()
        elapsed = time.monotonic() - started
        if ok:
            say(f"done {task} in {_seconds(elapsed)}")
            if done is not None:
                done.append((task, elapsed))
