"""Reading a time series from a CSV file: a header row, a time column, numeric value columns.

Every problem with the file is one :class:`ConfigError` on ``[task.path]`` that names the file,
the line (1-based, as an editor shows it; the header is line 1) and the column.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

from rnnlab.plugin import ConfigError, column_index, data_error, read_text

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})  # compared lower-case, stripped
SHOWN = 5  # how many affected lines an error lists
EPOCH = datetime(1970, 1, 1)


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the data rows, each with its line number. Names the file, the line and
    the column for undecodable bytes, a missing header and rows of the wrong width."""
    text = read_text(path, "csv")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise data_error(
                path,
                "is empty: expected a header row naming the columns, then one row per time step",
            )
        header = [h.strip() for h in header]
        if all(_number(h) is not None for h in header):
            raise data_error(
                path,
                f"line 1 holds numbers ({','.join(header)}), not a header: "
                f"the first line must name the columns, e.g. date,value",
            )
        for i, name in enumerate(header):
            if not name:
                raise data_error(path, f"line 1: column {i + 1} has no name")
            if name in header[:i]:
                raise data_error(path, f"line 1: column name {name!r} appears twice")
        rows = []
        for cells in reader:
            line = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if len(cells) != len(header):
                raise data_error(
                    path,
                    f"line {line} has {len(cells)} fields, the header (line 1) has {len(header)}",
                )
            rows.append((line, cells))
    except csv.Error as exc:
        raise data_error(path, f"line {reader.line_num}: not valid CSV ({exc})") from None
    return header, rows


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_time(cell: str) -> float | datetime | None:
    """A number (e.g. a year), an ISO 8601 date or date-time, or ``YYYY-MM``; else None."""
    cell = cell.strip()
    value = _number(cell)
    if value is not None:
        return value
    try:
        return datetime.fromisoformat(cell)
    except ValueError:
        pass
    try:
        return datetime.combine(date.fromisoformat(cell + "-01"), datetime.min.time())
    except ValueError:
        return None


@dataclass
class Series:
    """The columns read from the file: times (as shown, and as numbers for arithmetic), values
    ``[rows, columns]`` with NaN where a value is missing, and each row's line in the file."""

    path: Path
    time_name: str
    names: list[str]
    times: list  # float or datetime, one per row
    values: np.ndarray
    lines: np.ndarray

    def time_numbers(self) -> np.ndarray:
        """Times as floats (seconds since the epoch for dates), for interpolation."""

        def seconds(t: datetime) -> float:  # naive times as written, not as local clock time
            return t.timestamp() if t.tzinfo else (t - EPOCH).total_seconds()

        return np.array(
            [seconds(t) if isinstance(t, datetime) else t for t in self.times], dtype=float
        )

    def time_text(self, i: int) -> str:
        t = self.times[i]
        if isinstance(t, datetime):
            return t.date().isoformat() if t.time() == datetime.min.time() else t.isoformat()
        return f"{t:g}"


def read_series(path: Path, time_column: str, names: list[str]) -> Series:
    """Columns ``names`` (empty: every column but the time column) of the CSV file at
    ``path``, with ``time_column`` ("" = the first column) parsed and required to increase.
    Empty cells and NA/NaN/null are missing (NaN); any other non-number is an error naming the
    line and the column."""
    header, rows = read_csv_rows(path)
    t_col = column_index(path, header, time_column or header[0], "time_column")
    time_name = header[t_col]
    names = list(names) or [h for h in header if h != time_name]
    if not names:
        raise data_error(path, f"has only the time column {time_name!r}: add a column of values")
    cols = [column_index(path, header, n, "columns") for n in names]
    if t_col in cols:
        raise ConfigError(
            f"column {time_name!r} is the time column; it cannot also be a value",
            table="task",
            key="columns",
        )
    if not rows:
        raise data_error(path, "has a header but no data rows")
    times, values = [], np.empty((len(rows), len(cols)))
    for r, (line, cells) in enumerate(rows):
        t = parse_time(cells[t_col])
        if t is None:
            raise data_error(
                path,
                f"line {line}, column {time_name!r}: {cells[t_col]!r} is not "
                f"a time (a number such as a year, or an ISO 8601 date such "
                f"as 2020-01-31 or date-time)",
            )
        if times and (
            type(t) is not type(times[-1])
            or (isinstance(t, datetime) and (t.tzinfo is None) != (times[-1].tzinfo is None))
        ):
            before = f"line {rows[r - 1][0]} has {rows[r - 1][1][t_col]!r}"
            raise data_error(
                path,
                f"line {line}, column {time_name!r}: {cells[t_col]!r} is not "
                f"the same kind of time as the one before ({before}): use "
                f"numbers, or dates and date-times all with or all without "
                f"a time zone",
            )
        if times and not t > times[-1]:
            raise data_error(
                path,
                f"line {line}, column {time_name!r}: time {cells[t_col]!r} "
                f"does not come after {rows[r - 1][1][t_col]!r} on line "
                f"{rows[r - 1][0]}; the time column must increase (sort "
                f"the file by time, one row per time)",
            )
        times.append(t)
        for j, c in enumerate(cols):
            cell = cells[c].strip()
            if cell.lower() in MISSING:
                values[r, j] = np.nan
                continue
            value = _number(cell)
            if value is None:
                raise data_error(
                    path,
                    f"line {line}, column {header[c]!r}: {cells[c]!r} is not "
                    f"a number (a missing value is an empty cell or NA)",
                )
            values[r, j] = value
    return Series(path, time_name, names, times, values, np.array([ln for ln, _ in rows]))


def fill_missing(series: Series, how: str) -> Series:
    """Deal with missing values: "error" names the column and its first affected lines;
    "interpolate" fills linearly in time (the nearest value at either end); "drop" removes the
    rows that miss a value in any used column (windows then join across the gap)."""
    gaps = np.isnan(series.values)
    if not gaps.any():
        return series
    if how == "error":
        j = int(np.flatnonzero(gaps.any(axis=0))[0])
        rows = np.flatnonzero(gaps[:, j])
        shown = ", ".join(str(n) for n in series.lines[rows[:SHOWN]])
        more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
        others = [series.names[k] for k in np.flatnonzero(gaps.any(axis=0)) if k != j]
        also = f" (column(s) {', '.join(map(repr, others))} miss values too)" if others else ""
        raise ConfigError(
            f"{series.path}: column {series.names[j]!r} has {len(rows)} missing value(s), on "
            f"line(s) {shown}{more}{also}; fill them in the file, or set missing = "
            f'"interpolate" (linear in time) or "drop" (remove those rows)',
            table="task",
            key="missing",
        )
    if how == "drop":
        keep = ~gaps.any(axis=1)
        times = [t for t, k in zip(series.times, keep, strict=True) if k]
        return Series(
            series.path,
            series.time_name,
            series.names,
            times,
            series.values[keep],
            series.lines[keep],
        )
    t, values = series.time_numbers(), series.values.copy()
    for j in range(values.shape[1]):
        ok = ~gaps[:, j]
        if not ok.any():
            raise ConfigError(
                f"{series.path}: column {series.names[j]!r} has no values at all",
                table="task",
                key="columns",
            )
        values[~ok, j] = np.interp(t[~ok], t[ok], values[ok, j])
    return Series(series.path, series.time_name, series.names, series.times, values, series.lines)
