"""One writer per run directory: an OS-level lock on ``run.lock`` in the run directory.

The process that writes a run (``rnnlab run``, ``resume``, a sweep worker) takes an exclusive
``flock`` on ``<run>/run.lock`` before it writes anything and holds it until it has written its
last byte; the file records the holder's pid, host and start time. A second writer fails at once
with :class:`RunLocked`, naming the holder. The kernel drops the lock when its holder dies (even
by SIGKILL), so a lock left by a dead process is simply taken over; the record it left is only
read to name it.

Readers (``rnnlab runs``, ``show``, sweeps) ask :func:`holder` whether a run's writer is alive:
a run whose summary says "running" but whose lock nobody holds has died.

What is guaranteed where (see README, "Runs that survive"):
- local file systems: exactly one writer per run directory, always;
- NFS (v4, or v3 with lockd): Linux emulates ``flock`` with byte-range locks the server keeps,
  so it holds between hosts too; a host that crashes keeps its lock until the server's lease
  expires (about 90 s on NFS v4);
- file systems without locks (``ENOLCK``, NFS mounted ``nolock``): rnnlab falls back to the pid
  and host in the record: a live process on this host is refused, a holder on another host
  cannot be checked, so two hosts may then write one run.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import RnnlabError

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows: no advisory locks; records only)
    fcntl = None

LOCK = "run.lock"
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
RETRIES = 20  # a reader's probe holds the lock for microseconds; try again before refusing


class RunLocked(RnnlabError):
    """Another live process writes this run directory."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a run directory's lock, as recorded in ``run.lock``."""

    pid: int | None
    host: str
    started: str  # ISO time the holder took the lock
    command: str = ""

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        host = f" on {self.host}" if self.host else ""
        since = f" since {self.started}" if self.started else ""
        what = f", command: {self.command}" if self.command else ""
        return f"{who}{host}{since}{what}"

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()


def open_lock_file(path: Path, flags: int) -> int:
    """A descriptor of the regular file ``path``; OSError for anything else (a folder, a FIFO
    or a device put there would block or mislead)."""
    fd = os.open(path, flags | os.O_NONBLOCK, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


def read_holder(path: Path) -> Holder | None:
    """The record in ``<path>/run.lock``; None when missing or unreadable."""
    try:
        fd = open_lock_file(Path(path) / LOCK, os.O_RDONLY)
        try:
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
        data = json.loads(raw.decode("utf-8"))
        pid = data.get("pid")
        return Holder(
            pid if isinstance(pid, int) else None,
            str(data.get("host", "")),
            str(data.get("started", "")),
            str(data.get("command", "")),
        )
    except (OSError, ValueError, AttributeError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, OverflowError):  # OverflowError: no such pid (a damaged record)
        return False
    return True


def holder(path: Path) -> tuple[bool | None, Holder | None]:
    """``(alive, record)`` for the run directory ``path``: alive is True while a process holds
    its lock, False when none does, None when this host cannot tell (no lock support and the
    recorded holder is on another host). Never takes the lock for more than an instant."""
    path = Path(path)
    record = read_holder(path)
    if record is not None and record.local and record.pid is not None:
        if not pid_alive(record.pid):
            return False, record  # dead on this host: no need to look at the lock
    lock_file = path / LOCK
    if fcntl is None or not lock_file.exists():
        return (None, record) if record is not None and not record.local else (False, record)
    try:
        fd = open_lock_file(lock_file, os.O_RDONLY)
    except OSError:
        return None, record
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True, record
    except OSError as exc:
        if exc.errno in NO_LOCKS:  # no lock support: only the record can tell
            if record is None or record.pid is None or not record.local:
                return None, record
            return pid_alive(record.pid), record
        return None, record
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, record
    finally:
        os.close(fd)


class RunLock:
    """The lock on one run directory, held by this process from :meth:`acquire` to
    :meth:`release` (or the process's end). Re-entrant within a process: acquiring a directory
    this process already holds returns at once and counts, so that a sweep worker holding a run
    can call the runner, which takes the same lock (in the same thread; another thread is
    refused like another process)."""

    _held: dict[tuple[int, int], list] = {}  # directory (dev, inode) -> [fd, count, thread]
    _guard = threading.Lock()

    def __init__(self, path: Path):
        self.path = Path(path)
        self.command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else ""
        self.key: tuple[int, int] | None = None  # the directory's (device, inode)
        self.acquired = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            raise RnnlabError(f"{self.path}: no such run directory") from None
        self.key = (st.st_dev, st.st_ino)
        with RunLock._guard:
            held = RunLock._held.get(self.key)
            if held is not None:
                if held[2] != threading.get_ident():  # another thread of this process writes it
                    raise RunLocked(self._refusal(read_holder(self.path)))
                held[1] += 1
                self.acquired = True
                return
            fd = self._take()
            RunLock._held[self.key] = [fd, 1, threading.get_ident()]
            self.acquired = True

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        with RunLock._guard:
            held = RunLock._held.get(self.key)
            if held is None:
                return
            held[1] -= 1
            if held[1] == 0:
                del RunLock._held[self.key]
                os.close(held[0])  # closing drops the flock; the record stays, for readers

    def _take(self) -> int:
        """Open and lock ``run.lock``, retrying while the file is swapped or a reader probes."""
        lock_file = self.path / LOCK
        for attempt in range(RETRIES):
            try:
                fd = open_lock_file(lock_file, os.O_RDWR | os.O_CREAT)
            except FileNotFoundError:
                raise RnnlabError(f"{self.path}: no such run directory") from None
            except OSError as exc:
                raise RnnlabError(
                    f"{lock_file}: cannot open the run's lock file: {exc.strerror or exc}"
                ) from None
            try:
                if self._lock(fd, lock_file) and self._same_file(fd, lock_file):
                    self._record(fd)
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            time.sleep(0.01 * (attempt + 1))
        raise RunLocked(self._refusal(read_holder(self.path)))

    def _lock(self, fd: int, lock_file: Path) -> bool:
        """True once this process holds the lock; False to try again; RunLocked when a live
        process holds it."""
        if fcntl is None:
            return self._by_record()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            record = read_holder(self.path)
            if record is None:
                return False  # the holder is writing its record: read it again
            if (
                record.local
                and record.pid is not None
                and (record.pid == os.getpid() or not pid_alive(record.pid))
            ):
                return False  # the record is old: a reader is probing; try again
            raise RunLocked(self._refusal(record)) from None
        except OSError as exc:
            if exc.errno in NO_LOCKS:
                return self._by_record()
            raise RnnlabError(f"{lock_file}: cannot lock: {exc.strerror or exc}") from None

    def _by_record(self) -> bool:
        """No OS lock here: refuse a live holder recorded on this host; take over otherwise."""
        record = read_holder(self.path)
        if (
            record is not None
            and record.local
            and record.pid is not None
            and record.pid != os.getpid()
            and pid_alive(record.pid)
        ):
            raise RunLocked(self._refusal(record))
        return True

    @staticmethod
    def _same_file(fd: int, lock_file: Path) -> bool:
        """The locked file is still the one at ``lock_file`` (not removed or replaced between
        open and lock, as when a sweep discards the directory)."""
        try:
            return os.fstat(fd).st_ino == os.stat(lock_file).st_ino
        except OSError:
            return False

    def _record(self, fd: int) -> None:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": self.command,
        }
        data = (json.dumps(record) + "\n").encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except OSError as exc:
            raise RnnlabError(f"{self.path / LOCK}: cannot write: {exc.strerror or exc}") from None

    def _refusal(self, record: Holder | None) -> str:
        who = record.describe() if record is not None else "another process"
        return (
            f"{self.path}: the run is in use by {who}; only one process may write a run "
            f"at a time. Wait for it to end (or stop it), then try again"
        )
