"""Reading a user's data file (CSV, JSON lines, ...) from a task plugin, with errors that say
where the problem is: a missing, unreadable or non-UTF-8 file (its line, character and the CSV
column or JSON key holding the bad byte), and a column name that is not in the header.

Every error is a :class:`ConfigError` on the task table, so rnnlab prints it as one line naming
the experiment file and the key (``[task.path]``, ``[task.columns]``...), then the data file.
"""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

from ..errors import ConfigError, closest


def data_error(path: Path, message: str) -> ConfigError:
    """An error in the data file at ``path``, set by ``[task.path]``: ``"<path>: <message>"``.
    ``message`` says where in the file (``"line 3, column 'x': ..."``) and what would be valid."""
    return ConfigError(f"{path}: {message}", table="task", key="path")


MAX_BYTES = 4 * 2**30  # a data file larger than this is refused before it fills the memory


def read_data(path: Path, *, limit: int = MAX_BYTES) -> bytes:
    """The bytes of the data file at ``path``: a regular file (a FIFO would wait forever for a
    writer, a device such as /dev/zero never ends) of at most ``limit`` bytes. Anything else,
    and a missing or unreadable file, is a :func:`data_error` naming the file (and, when it is
    missing, the folder it was looked for in)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait
    except FileNotFoundError:
        raise data_error(path, f"no such file (looked in {_folder(path)})") from None
    except IsADirectoryError:
        raise data_error(path, "is a directory, not a file") from None
    except OSError as exc:
        raise data_error(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise data_error(path, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise data_error(
                path, f"is a {_kind(info.st_mode)}, not a regular file; copy the data into a file"
            )
        if info.st_size > limit:
            raise data_error(
                path, f"holds {info.st_size:,} bytes, more than the {limit:,} a data file may hold"
            )
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew while read
                raise data_error(path, f"holds more than the {limit:,} bytes a data file may hold")
        return b"".join(chunks)
    except OSError as exc:
        raise data_error(path, f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _folder(path: Path) -> str:
    try:
        return str(path.absolute().parent)
    except OSError:
        return str(path.parent)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def read_text(path: Path, fmt: str = "") -> str:
    """The text of the file at ``path`` (UTF-8, a byte-order mark allowed). Whatever
    :func:`read_data` refuses is a :func:`data_error`; so is a byte that is not UTF-8, named
    by its line and character and, for ``fmt`` ``"csv"``, the column (by its header name) or,
    for ``"jsonl"`` (one JSON object per line), the key whose value holds it."""
    raw = read_data(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        n = raw.count(b"\n", 0, exc.start)
        start = raw.rfind(b"\n", 0, exc.start) + 1
        where = f"line {n + 1}, character {exc.start - start + 1}"
        lines = raw.decode("utf-8-sig", errors="replace").splitlines()
        if n < len(lines) and fmt == "csv":
            where += _bad_byte_column(lines[n], next(csv.reader(lines[:1]), []))
        elif n < len(lines) and fmt == "jsonl":
            where += _bad_byte_key(lines[n])
        raise data_error(
            path,
            f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
        ) from None


def _bad_byte_column(text_line: str, header: list[str]) -> str:
    """The column of a line decoded with replacement characters that holds one, for messages."""
    for i, cell in enumerate(next(csv.reader([text_line]), [])):
        if "\ufffd" in cell:
            return f", column {header[i]!r}" if i < len(header) else f", field {i + 1}"
    return ""


def _bad_byte_key(text_line: str) -> str:
    """The key of a JSON object line decoded with replacement characters whose value holds
    one, for messages ("" when the line is no JSON object)."""
    try:
        obj = json.loads(text_line)
    except json.JSONDecodeError:
        return ""
    if not isinstance(obj, dict):
        return ""
    for key, value in obj.items():
        if "\ufffd" in key or "\ufffd" in json.dumps(value, ensure_ascii=False):
            return f", key {key!r}"
    return ""


def column_index(path: Path, header: list[str], name: str, key: str) -> int:
    """Where column ``name`` is in ``header`` (the names of the file's columns). A name not in
    it is a :class:`ConfigError` on ``[task.<key>]`` (the option that named the column) with the
    closest column name, if any, and all of them."""
    if name in header:
        return header.index(name)
    raise ConfigError(
        f"no column {name!r} in {path}{closest(name, header)} (columns: {', '.join(header)})",
        table="task",
        key=key,
    )
