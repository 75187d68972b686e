"""A line chart drawn with characters, for the terminal (`rnnlab show`): no plotting library.

Each series is a list of ``(x, y)`` points on a grid of ``height`` rows by ``width`` columns;
consecutive points are joined by straight segments. On a logarithmic axis, values <= 0 or not
finite are left out (a loss of 0 has no place on it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from .terminal import fmt

MARKS = (("*", "cyan"), ("o", "magenta"), ("+", "green"), ("x", "yellow"))
OVERLAP = ("@", "bold white")  # two series in one cell


def _scale(values: Sequence[float], log: bool) -> list[float | None]:
    out = []
    for v in values:
        ok = v is not None and math.isfinite(v) and (v > 0 or not log)
        out.append((math.log10(v) if log else float(v)) if ok else None)
    return out


def _cells(xs, ys, x0, x1, y0, y1, width, height) -> set[tuple[int, int]]:
    """The (row, column) cells a polyline through the points covers."""

    def col(x):
        return 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (width - 1))

    def row(y):
        return height // 2 if y1 == y0 else round((y1 - y) / (y1 - y0) * (height - 1))

    cells = set()
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    for (xa, ya), (xb, yb) in zip(points, points[1:], strict=False):
        ca, cb = col(xa), col(xb)
        for c in range(ca, cb + 1):  # one cell per column between the two points
            t = 0.0 if cb == ca else (c - ca) / (cb - ca)
            cells.add((row(ya + t * (yb - ya)), c))
    for x, y in points:
        cells.add((row(y), col(x)))
    return cells


def line_chart(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    width: int = 60,
    height: int = 12,
    log: bool = True,
    x_label: str = "",
    y_label: str = "",
) -> Text:
    """Draw ``{name: (xs, ys)}`` as a character chart with axes and a legend."""
    scaled = {name: (list(xs), _scale(ys, log)) for name, (xs, ys) in series.items()}
    all_x = [x for xs, ys in scaled.values() for x, y in zip(xs, ys, strict=True) if y is not None]
    all_y = [y for _, ys in scaled.values() for y in ys if y is not None]
    if not all_y:
        return Text("(nothing to plot: no finite values" + (" above 0)" if log else ")"))
    x0, x1, y0, y1 = min(all_x), max(all_x), min(all_y), max(all_y)
    grid: dict[tuple[int, int], int] = {}
    for k, (xs, ys) in enumerate(scaled.values()):
        for cell in _cells(xs, ys, x0, x1, y0, y1, width, height):
            grid[cell] = -1 if grid.get(cell, k) != k else k

    def label(y):
        return fmt(10**y if log else y)

    ticks = {0: label(y1), (height - 1) // 2: label((y0 + y1) / 2), height - 1: label(y0)}
    margin = max(len(t) for t in ticks.values()) + 1
    text = Text()
    if y_label:
        text.append(f"{y_label}{' (log scale)' if log else ''}\n", style="dim")
    for r in range(height):
        text.append(ticks.get(r, "").rjust(margin - 1) + " " + ("┤" if r in ticks else "│"))
        for c in range(width):
            k = grid.get((r, c))
            if k is None:
                text.append(" ")
            else:
                mark, style = OVERLAP if k < 0 else MARKS[k % len(MARKS)]
                text.append(mark, style=style)
        text.append("\n")
    text.append(" " * margin + "└" + "─" * width + "\n")
    left, right = fmt(x0), fmt(x1) if x1 != x0 else ""
    text.append(" " * (margin + 1) + left + right.rjust(width - len(left)) + "\n")
    if x_label:
        text.append(" " * (margin + 1) + x_label.center(width) + "\n", style="dim")
    text.append(" " * (margin + 1))
    for k, name in enumerate(series):
        mark, style = MARKS[k % len(MARKS)]
        text.append(mark, style=style)
        text.append(f" {name}   ")
    text.append(f"{OVERLAP[0]} both", style="dim")
    return text
