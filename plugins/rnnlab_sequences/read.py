"""Reading labelled sequences from JSON Lines or CSV.

JSON Lines: one object per line, ``{"sequence": ..., "label": ..., "split": ...}`` (the field
names are options). A sequence is a list of numbers (one feature per step), a list of lists of
numbers (one vector per step, the same size on every line) or a string (its characters).

CSV (a header row): one row per sequence, the sequence field holding text; or, with
``id_field``, one row per *step*: the rows that share an id form one sequence in file order, its
numeric columns the step's vector, and the label (and split) repeated on each of its rows.

Every problem is one :class:`ConfigError` on ``[task.path]`` naming the file, the line (1-based,
as an editor shows it) and the field.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.plugin import ConfigError, column_index, data_error, read_text

FORMATS = ("jsonl", "csv")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


@dataclass
class Example:
    """One labelled sequence: ``steps`` is text (str) or a float array ``[L, F]``; ``label`` a
    class name (str) or a number (float); ``line`` where it starts in the file."""

    line: int
    steps: str | np.ndarray
    label: str | float
    split: str | None = None


@dataclass
class Fields:
    """The names of the fields to read (see the task's options)."""

    sequence: str = "sequence"
    label: str = "label"
    split: str = ""
    id: str = ""
    columns: tuple[str, ...] = ()


def file_format(path: Path, given: str) -> str:
    if given != "auto":
        return given
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of {path} from its suffix (.jsonl, .ndjson, "
            f'.json or .csv); set format = "jsonl" or "csv"',
            table="task",
            key="format",
        )
    return fmt


def read_examples(path: Path, fmt: str, fields: Fields, labels: str) -> list[Example]:
    """Every example in the file, validated; ``labels`` is "auto", "classes" or "numbers"."""
    fmt = file_format(path, fmt)
    text = read_text(path, fmt)
    if fmt == "jsonl":
        examples = read_jsonl(path, text, fields, labels)
    elif fields.id:
        examples = read_csv_steps(path, text, fields, labels)
    else:
        examples = read_csv_rows(path, text, fields, labels)
    if not examples:
        raise data_error(path, "holds no examples")
    return examples


# -- JSON Lines ------------------------------------------------------------------------------
def read_jsonl(path: Path, text: str, fields: Fields, labels: str) -> list[Example]:
    examples, width, first_kind = [], None, None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise data_error(
                path, f"line {n}, character {exc.colno}: not valid JSON ({exc.msg})"
            ) from None
        if not isinstance(obj, dict):
            raise data_error(
                path,
                f"line {n}: expected a JSON object like "
                f'{{"{fields.sequence}": [...], "{fields.label}": ...}}, '
                f"got {type(obj).__name__}",
            )
        for key in (fields.sequence, fields.label, fields.split):
            if key and key not in obj:
                raise data_error(
                    path, f"line {n}: no key {key!r} (keys: {', '.join(map(repr, obj)) or 'none'})"
                )
        where = f"line {n}, key {fields.sequence!r}"
        steps = json_steps(path, where, obj[fields.sequence])
        kind = "text" if isinstance(steps, str) else "numbers"
        first_kind = first_kind or (kind, n)
        if kind != first_kind[0]:
            raise data_error(
                path,
                f"{where}: holds {kind}, but line {first_kind[1]} holds "
                f"{first_kind[0]}; every sequence must be of one kind",
            )
        if kind == "numbers":
            width = width or (steps.shape[1], n)
            if steps.shape[1] != width[0]:
                raise data_error(
                    path,
                    f"{where}: {steps.shape[1]} values per step, but line "
                    f"{width[1]} has {width[0]}",
                )
        label = obj[fields.label]
        where = f"line {n}, key {fields.label!r}"
        if isinstance(label, bool) or label is None or not isinstance(label, str | int | float):
            raise data_error(
                path, f"{where}: a label must be a class name or a number, got {json.dumps(label)}"
            )
        if labels == "classes" or (labels == "auto" and isinstance(label, str)):
            label = str(label)
        else:
            label = number_label(path, where, label)
        split = (
            split_name(path, f"line {n}, key {fields.split!r}", obj[fields.split])
            if fields.split
            else None
        )
        examples.append(Example(n, steps, label, split))
    if labels == "auto":
        kinds = {type(e.label) for e in examples}
        if len(kinds) > 1:
            first = {k: next(e.line for e in examples if type(e.label) is k) for k in kinds}
            raise data_error(
                path,
                f"key {fields.label!r} holds numbers (line {first[float]}) and "
                f'class names (line {first[str]}); set labels = "classes" '
                f'or "numbers"',
            )
    return examples


def json_steps(path: Path, where: str, value) -> str | np.ndarray:
    """A JSON sequence as text or a float array ``[L, F]``."""
    if isinstance(value, str):
        if not value:
            raise data_error(path, f"{where}: empty sequence")
        return value
    if not isinstance(value, list):
        raise data_error(
            path,
            f"{where}: expected a list of numbers, a list of lists of "
            f"numbers, or a string, got {json.dumps(value)[:40]}",
        )
    if not value:
        raise data_error(path, f"{where}: empty sequence")
    vectors = all(isinstance(v, list) for v in value)
    rows = value if vectors else [[v] for v in value]
    if vectors and len({len(r) for r in rows}) > 1:
        sizes = [len(r) for r in rows]
        k = next(i for i, s in enumerate(sizes) if s != sizes[0])
        raise data_error(
            path, f"{where}, step {k + 1}: {sizes[k]} values, but step 1 has {sizes[0]}"
        )
    if vectors and not rows[0]:
        raise data_error(path, f"{where}, step 1: an empty vector")
    for k, row in enumerate(rows):
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise data_error(
                    path, f"{where}, step {k + 1}: {json.dumps(v)[:40]} is not a finite number"
                )
    return np.array(rows, dtype=float)


def number_label(path: Path, where: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise data_error(path, f'{where}: {value!r} is not a number (labels = "numbers")')
    return number


def split_name(path: Path, where: str, value) -> str:
    if value not in ("train", "val", "test"):
        raise data_error(path, f"{where}: {value!r} is not a split (valid: 'train', 'val', 'test')")
    return value


# -- CSV -------------------------------------------------------------------------------------
def csv_rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            raise data_error(path, "is empty: expected a header row naming the columns")
        rows = []
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != len(header):
                raise data_error(
                    path,
                    f"line {reader.line_num} has {len(cells)} fields, the "
                    f"header (line 1) has {len(header)}",
                )
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise data_error(path, f"line {reader.line_num}: not valid CSV ({exc})") from None
    return header, rows


def header_index(path: Path, header: list[str], name: str, key: str) -> int:
    """Where column ``name`` is, from the header (line 1)."""
    if name not in header and all(_is_number(h) for h in header):
        raise data_error(
            path,
            f"line 1 holds numbers ({','.join(header)}), not a header: the "
            f"first line must name the columns",
        )
    if name not in header:
        try:
            column_index(path, header, name, key)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc.detail}; line 1 must be a header naming the columns, or set {key}",
                table="task",
                key=key,
            ) from None
    return header.index(name)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def csv_label(path: Path, where: str, cell: str, labels: str) -> str | float:
    if not cell.strip():
        raise data_error(path, f"{where}: empty label")
    return number_label(path, where, cell.strip()) if labels == "numbers" else cell.strip()


def read_csv_rows(path: Path, text: str, fields: Fields, labels: str) -> list[Example]:
    """One row per sequence: the sequence column is text."""
    header, rows = csv_rows(path, text)
    s = header_index(path, header, fields.sequence, "sequence_field")
    lab = header_index(path, header, fields.label, "label_field")
    sp = header_index(path, header, fields.split, "split_field") if fields.split else None
    examples = []
    for line, cells in rows:
        if not cells[s]:
            raise data_error(path, f"line {line}, column {fields.sequence!r}: empty sequence")
        label = csv_label(path, f"line {line}, column {fields.label!r}", cells[lab], labels)
        split = (
            split_name(path, f"line {line}, column {fields.split!r}", cells[sp].strip())
            if sp is not None
            else None
        )
        examples.append(Example(line, cells[s], label, split))
    return examples


def read_csv_steps(path: Path, text: str, fields: Fields, labels: str) -> list[Example]:
    """One row per step, grouped by the id column into sequences (in order of first row)."""
    header, rows = csv_rows(path, text)
    i = header_index(path, header, fields.id, "id_field")
    lab = header_index(path, header, fields.label, "label_field")
    sp = header_index(path, header, fields.split, "split_field") if fields.split else None
    used = {i, lab} | ({sp} if sp is not None else set())
    names = list(fields.columns) or [h for k, h in enumerate(header) if k not in used]
    if not names:
        raise data_error(path, "has no column of values besides the id, label and split")
    cols = [column_index(path, header, n, "columns") for n in names]
    groups: dict[str, dict] = {}
    for line, cells in rows:
        key = cells[i].strip()
        if not key:
            raise data_error(path, f"line {line}, column {fields.id!r}: empty id")
        label = csv_label(path, f"line {line}, column {fields.label!r}", cells[lab], labels)
        split = (
            split_name(path, f"line {line}, column {fields.split!r}", cells[sp].strip())
            if sp is not None
            else None
        )
        step = []
        for c in cols:
            try:
                v = float(cells[c])
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise data_error(
                    path, f"line {line}, column {header[c]!r}: {cells[c]!r} is not a finite number"
                )
            step.append(v)
        g = groups.setdefault(key, {"line": line, "label": label, "split": split, "steps": []})
        for what, value, col in (("label", label, fields.label), ("split", split, fields.split)):
            if value != g[what]:
                raise data_error(
                    path,
                    f"line {line}, column {col!r}: {value!r}, but sequence "
                    f"{key!r} has {what} {g[what]!r} from line {g['line']}",
                )
        g["steps"].append(step)
    return [
        Example(g["line"], np.array(g["steps"]), g["label"], g["split"]) for g in groups.values()
    ]
