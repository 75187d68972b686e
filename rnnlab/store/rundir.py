"""The run directory: resolved config, per-epoch metrics, summary, parameters and checkpoint.

A new directory per run, never reused. Files that are rewritten (summary.json, params.npz) are
written atomically (temporary file in the same directory, fsync, rename), so a crash or Ctrl-C
at any instant leaves the previous version whole; metrics.jsonl is appended and flushed per line.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from ..errors import RnnlabError
from . import checkpoint
from .checkpoint import Checkpoint

CONFIG, METRICS, SUMMARY, PARAMS = "config.toml", "metrics.jsonl", "summary.json", "params.npz"
CHECKPOINT = "checkpoint.npz"
RUN_FILES = (CONFIG, METRICS, SUMMARY, PARAMS, CHECKPOINT)


def atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it over.

    A failure to write (full disk, no permission) is an RnnlabError naming the file.
    """
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise RnnlabError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise


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

    def write_config(self, tables: dict[str, Any]) -> None:
        atomic_write(self.path / CONFIG, lambda f: f.write(tomli_w.dumps(tables).encode()))

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.path / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(self.path / SUMMARY, lambda f: f.write(text.encode()))

    def save_params(self, params: dict[str, np.ndarray]) -> None:
        atomic_write(self.path / PARAMS, lambda f: np.savez(f, **params))

    def save_checkpoint(self, ckpt: Checkpoint) -> None:
        atomic_write(self.path / CHECKPOINT, lambda f: checkpoint.save(ckpt, f))

    def load_checkpoint(self) -> Checkpoint:
        return checkpoint.load(self.path / CHECKPOINT)

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl by ``records`` (a resume drops epochs after its checkpoint)."""
        text = "".join(json.dumps(r) + "\n" for r in records)
        atomic_write(self.path / METRICS, lambda f: f.write(text.encode()))

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

    def read_metrics(self) -> list[dict[str, Any]]:
        """The per-epoch records, read as `rnnlab runs` and `show` read them (a torn last line,
        which a killed run leaves, is skipped)."""
        from .records import read_history  # records reads run directories through this module

        return read_history(self.path)
