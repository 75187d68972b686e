"""The run directory: resolved config, per-epoch metrics, summary, parameters and checkpoint.

A new directory per run, never reused. Every file is written by :func:`write_file`: files that
are rewritten (summary.json, params.npz, the checkpoint, figures) atomically (temporary file in
the same directory, fsync, rename), so a crash or Ctrl-C at any instant leaves the previous
version whole; metrics.jsonl is appended a whole line at a time. A write that fails (a full
disk, a read-only file system) is a :class:`RunWriteError` naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from ..errors import RnnlabError
from . import checkpoint
from .checkpoint import Checkpoint, HistoryRef

CONFIG, METRICS, SUMMARY, PARAMS = "config.toml", "metrics.jsonl", "summary.json", "params.npz"
CHECKPOINT = "checkpoint.npz"
RUN_FILES = (CONFIG, METRICS, SUMMARY, PARAMS, CHECKPOINT)


class RunWriteError(RnnlabError):
    """A run directory's file could not be written: a full disk, a read-only file system, no
    permission. ``path`` is the file, ``cause`` the operating system's error; ``advice`` is
    said after the message."""

    def __init__(self, path: Path, cause: OSError, advice: str = ""):
        super().__init__(f"{path}: cannot write: {cause.strerror or cause}{advice}")
        self.path, self.cause, self.errno = Path(path), cause, cause.errno


REPLACE, APPEND, OVERWRITE = "replace", "append", "overwrite"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def write_file(path: Path, content, how: str = REPLACE) -> None:
    """The one way a run's files are written. ``content`` is bytes, or (REPLACE only) a function
    writing into a binary file. Any OSError becomes a :class:`RunWriteError` naming ``path``.

    - REPLACE: into a temporary file beside ``path`` (``.<name>.<random>.tmp``), fsynced, then
      renamed over it: a reader, or a crash at any instant, finds the previous version whole or
      the new one. Files get an ordinary ``open()``'s permissions (0666 less the umask).
    - APPEND: ``content`` is added whole or not at all (a failure part way cuts the file back).
    - OVERWRITE: written over the file's own bytes, for when a full disk refuses the temporary
      file; only when the file already holds at least as many bytes on disk (no new block is
      needed). Not atomic: the last resort of a failing run's summary.
    """
    path = Path(path)
    try:
        if how == REPLACE:
            _replace(path, content)
        elif how == APPEND:
            _append(path, content)
        else:
            _overwrite(path, content)
    except OSError as exc:
        raise RunWriteError(path, exc) from None


def _replace(path: Path, content) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.ftruncate(fd, size)  # no torn line: the record is written whole or not at all
            raise
    finally:
        os.close(fd)


def _overwrite(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        if len(data) > os.fstat(fd).st_blocks * 512:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file ``path``; OSError for anything else (reading a FIFO put in
    a file's place would wait forever)."""
    if Path(path).exists() and not Path(path).is_file():
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return Path(path).read_bytes()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, root: Path, name: str, *, exact: bool = False) -> RunDir:
        """A new directory ``root/<name>-<YYYYmmdd-HHMMSS>[-k]``; never an existing one.

        With ``exact`` the directory is ``root/<name>`` itself (a caller that names its runs,
        such as a sweep); it is an error if it exists already.
        """
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RnnlabError(f"{root}: cannot create the runs directory: {exc.strerror}") from None
        if exact:
            try:
                (root / name).mkdir()
            except FileExistsError:
                raise RnnlabError(f"{root / name}: run directory exists already") from None
            return cls(root / name)
        stem = f"{_slug(name)}-{time.strftime('%Y%m%d-%H%M%S')}"
        for k in range(1000):
            path = root / (stem if k == 0 else f"{stem}-{k}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise RnnlabError(
                    f"{path}: cannot create the run directory: {exc.strerror}"
                ) from None
        raise RnnlabError(f"{root}: could not find a free run directory name for {stem}")

    @classmethod
    def open(cls, path: Path) -> RunDir:
        path = Path(path)
        if not path.exists():
            raise RnnlabError(f"{path}: no such run directory")
        if not path.is_dir():
            raise RnnlabError(f"{path}: not a run directory (a file, not a directory)")
        for name in RUN_FILES:  # a FIFO or a device would block or mislead whoever reads it
            if (path / name).exists() and not (path / name).is_file():
                raise RnnlabError(
                    f"{path / name}: not a regular file; the run cannot be read "
                    f"until it is one again (or is gone)"
                )
        if not (path / CONFIG).is_file():
            raise RnnlabError(f"{path}: not a run directory (no {CONFIG})")
        return cls(path)

    def remove_leftovers(self) -> None:
        """Remove the temporary files of a writer killed part way (SIGKILL, a power cut); only
        the writer holding the run's lock may call this (another may be writing them)."""
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def write_config(self, tables: dict[str, Any]) -> None:
        write_file(self.path / CONFIG, tomli_w.dumps(tables).encode())

    def append_metrics(self, record: dict[str, Any]) -> bytes:
        """Add ``record`` as one line of metrics.jsonl; return the line's bytes."""
        line = (json.dumps(record) + "\n").encode()
        write_file(self.path / METRICS, line, APPEND)
        return line

    def write_summary(self, summary: dict[str, Any]) -> None:
        """summary.json, atomically; on a full disk, over the old summary's own bytes when they
        have room, so that a run failing for want of space still says so."""
        text = (json.dumps(summary, indent=2) + "\n").encode()
        try:
            write_file(self.path / SUMMARY, text)
        except RunWriteError as exc:
            if exc.errno not in NO_SPACE or not (self.path / SUMMARY).is_file():
                raise
            try:
                write_file(self.path / SUMMARY, text, OVERWRITE)
            except RunWriteError:
                raise exc from None

    def save_params(self, params: dict[str, np.ndarray]) -> None:
        write_file(self.path / PARAMS, lambda f: np.savez(f, **params))

    def save_checkpoint(self, ckpt: Checkpoint) -> None:
        """Write ``ckpt``; the metrics lines it refers to reach the disk first, so that a power
        cut cannot leave a checkpoint whose history is lost."""
        if ckpt.history is not None and ckpt.history.lines:
            self.sync(self.path / METRICS)
        write_file(self.path / CHECKPOINT, lambda f: checkpoint.save(ckpt, f))

    @staticmethod
    def sync(path: Path) -> None:
        """fsync ``path`` (a RunWriteError when the disk refuses)."""
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise RunWriteError(path, exc) from None

    def load_checkpoint(self) -> Checkpoint:
        """The checkpoint, with its history read back from metrics.jsonl when it keeps it
        there."""
        ckpt = checkpoint.load(self.path / CHECKPOINT)
        if ckpt.history is not None:
            ckpt.state.history = self.checkpoint_history(ckpt.history)
        return ckpt

    def checkpoint_history(self, ref: HistoryRef) -> list[dict[str, Any]]:
        """The records of the first ``ref.lines`` lines of metrics.jsonl, checked against the
        checkpoint's digest of them."""
        path = self.path / METRICS
        try:
            data = read_regular(path) if path.exists() else b""
        except OSError as exc:
            raise RnnlabError(f"{path}: unreadable ({exc.strerror or exc})") from None
        lines = data.splitlines(keepends=True)[: ref.lines]
        whole = len(lines) == ref.lines and all(line.endswith(b"\n") for line in lines)
        if not whole or hashlib.sha256(b"".join(lines)).hexdigest() != ref.digest:
            raise RnnlabError(
                f"{path}: does not hold the {ref.lines} epoch records the checkpoint "
                f"{self.path / CHECKPOINT} was written after (changed or cut short since); "
                f"the run cannot be resumed"
            )
        try:
            return [json.loads(line) for line in lines]
        except ValueError as exc:
            raise RnnlabError(f"{path}: unreadable ({exc})") from None

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> list[bytes]:
        """Replace metrics.jsonl by ``records`` (a resume drops epochs after its checkpoint);
        return the lines' bytes."""
        lines = [(json.dumps(r) + "\n").encode() for r in records]
        write_file(self.path / METRICS, b"".join(lines))
        return lines

    def read_summary(self) -> dict[str, Any]:
        try:
            summary = json.loads(read_regular(self.path / SUMMARY).decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise RnnlabError(f"{self.path / SUMMARY}: unreadable summary ({exc})") from None
        if not isinstance(summary, dict):
            raise RnnlabError(
                f"{self.path / SUMMARY}: unreadable summary (a JSON "
                f"{type(summary).__name__}, not a table)"
            )
        return summary

    def load_params(self) -> dict[str, np.ndarray]:
        path = self.path / PARAMS
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise RnnlabError(f"{path}: no parameter file") from None
        except checkpoint.DAMAGED as exc:
            raise RnnlabError(
                f"{path}: truncated or corrupted parameter file ({type(exc).__name__}: {exc})"
            ) from None

    def load_params_into(self, params: dict[str, np.ndarray]) -> None:
        """Put the run's saved parameters into ``params`` (a model's, in place), checking that
        they are the same names and shapes."""
        if not (self.path / PARAMS).exists():
            raise RnnlabError(f"{self.path}: no {PARAMS} (the run saved no parameters)")
        saved = self.load_params()
        if {k: v.shape for k, v in saved.items()} != {k: v.shape for k, v in params.items()}:
            raise RnnlabError(
                f"{self.path / PARAMS}: its parameters do not fit the model of {CONFIG}"
            )
        for name, value in saved.items():
            params[name][...] = value

    def read_metrics(self) -> list[dict[str, Any]]:
        """The per-epoch records, read as `rnnlab runs` and `show` read them (a torn last line,
        which a killed run leaves, is skipped)."""
        return read_history(self.path)


def read_history(path: Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """The per-epoch records of metrics.jsonl; a torn last line (a killed run) is skipped."""
    try:
        lines = read_regular(path / METRICS).decode("utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        if problems is not None:
            problems.append(f"{METRICS} unreadable ({exc.strerror})")
        return []
    except UnicodeDecodeError:
        if problems is not None:
            problems.append(f"{METRICS} unreadable (not UTF-8 text)")
        return []
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if problems is not None and number < len(lines):  # a torn last line is expected
                problems.append(f"{METRICS} line {number} unreadable")
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
