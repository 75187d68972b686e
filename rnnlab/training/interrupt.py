"""Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM.

The first signal only raises a flag: the training loop sees it at the end of the current batch
(or of the current epoch when a backend runs whole epochs), saves a checkpoint and stops. A second
signal raises :class:`rnnlab.errors.RunInterrupted` at once; checkpoints are written atomically,
so the last one stays whole whatever the loop was doing.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from ..errors import RunInterrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal:
    """The signal that asked the run to stop, once one has arrived."""

    def __init__(self):
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextmanager
def graceful_stop():
    """Yield a :class:`StopSignal` that SIGINT and SIGTERM set while the block runs.

    Outside the main thread signals cannot be caught; the flag then never rises and a Ctrl-C
    behaves as Python's default (KeyboardInterrupt).
    """
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, _frame):
        if stop.requested:  # second signal: stop now
            raise RunInterrupted(signum, f"{signal.Signals(signum).name} again: stopped at once")
        stop.signum = signum

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
