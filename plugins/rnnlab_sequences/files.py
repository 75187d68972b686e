"""Reading a data file with errors that name it: a missing, unreadable or non-UTF-8 file, and a
column that is not in the header. (The `series` task has much the same lines: each plugin stands
alone, as a third-party one would.)"""

from __future__ import annotations

import csv
import difflib
import json
from pathlib import Path

from rnnlab.plugin import ConfigError


def data_error(path: Path, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", table="task", key="path")


def read_text(path: Path, fmt: str) -> str:
    """The file's text (UTF-8, a byte-order mark allowed); any failure names the file, and a
    byte that is not UTF-8 its line, character and the CSV column or JSON key holding it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise data_error(path, "no such file") from None
    except IsADirectoryError:
        raise data_error(path, "is a directory, not a file") from None
    except OSError as exc:
        raise data_error(path, f"cannot be read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        n = raw.count(b"\n", 0, exc.start)
        start = raw.rfind(b"\n", 0, exc.start) + 1
        where = f"line {n + 1}, character {exc.start - start + 1}"
        lines = raw.decode("utf-8-sig", errors="replace").splitlines()
        if n < len(lines) and fmt == "csv":
            where += bad_byte_column(lines[n], next(csv.reader(lines[:1]), []))
        elif n < len(lines):
            where += bad_byte_key(lines[n])
        raise data_error(path, f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save "
                               f"the file as UTF-8") from None


def bad_byte_column(text_line: str, header: list[str]) -> str:
    """The column of a line decoded with replacement characters that holds one, for messages."""
    for i, cell in enumerate(next(csv.reader([text_line]), [])):
        if "\ufffd" in cell:
            return f", column {header[i]!r}" if i < len(header) else f", field {i + 1}"
    return ""


def bad_byte_key(text_line: str) -> str:
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
    """Where column ``name`` is; a name not in the header is an error on ``[task.key]``."""
    if name in header:
        return header.index(name)
    near = difflib.get_close_matches(name, header, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ConfigError(f"no column {name!r} in {path}{hint} (columns: {', '.join(header)})",
                      table="task", key=key)
