"""Figures as PNG files: a run's loss curves, the task's own figure, several runs overlaid, and
seconds per epoch per backend.

matplotlib is optional (``pip install 'rnnlab[plot]'``) and imported only here, inside the
functions that draw, so rnnlab starts as fast without it. Figures are drawn on
``matplotlib.figure.Figure`` objects, never through pyplot: no global state, no window.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import RnnlabError
from ..registry.failures import origin_of
from ..store.rundir import write_file

PLOT_HINT = "pip install 'rnnlab[plot]'"
LOSS_PNG = "loss.png"
DPI = 110


def available() -> bool:
    """Whether matplotlib can be imported here."""
    return importlib.util.find_spec("matplotlib") is not None


def require() -> None:
    if not available():
        raise RnnlabError(f"plots need matplotlib, which is not installed: {PLOT_HINT}")


def new_figure(width: float = 8.0, height: float = 4.5):
    """An empty figure (inches), with room for labels."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # installed but broken
        raise RnnlabError(
            f"plots need matplotlib, which cannot be imported ({exc}): {PLOT_HINT}"
        ) from None

    return Figure(figsize=(width, height), layout="constrained")


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically (a reader never sees half a file)."""
    path = Path(path)
    write_file(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return path


# -- loss curves -----------------------------------------------------------------------------
def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r.get("epoch"), r.get(key)) for r in history]
    points = [
        (e, v)
        for e, v in points
        if isinstance(e, int) and isinstance(v, int | float) and math.isfinite(v) and v > 0
    ]
    return [e for e, _ in points], [v for _, v in points]


def loss_figure(curves: Mapping[str, list[dict]], path: Path, title: str = "") -> Path:
    """Train (solid) and validation (dashed) loss per epoch, one colour per run, log scale; the
    best validation epoch of each run is marked. ``curves`` maps a run's label to its
    metrics.jsonl records."""
    from matplotlib.lines import Line2D

    several = len(curves) > 1
    fig = new_figure(10.0 if several else 8.0, 4.5)
    ax = fig.add_subplot()
    for k, (label, history) in enumerate(curves.items()):
        colour = f"C{k % 10}"
        epochs, loss = _series(history, "loss")
        ax.plot(epochs, loss, color=colour, lw=1.6, label=label if several else "train loss")
        epochs, val = _series(history, "val_loss")
        ax.plot(
            epochs, val, color=colour, lw=1.6, ls="--", label="_" if several else "validation loss"
        )
        if val:
            best = min(range(len(val)), key=val.__getitem__)
            ax.plot(
                [epochs[best]],
                [val[best]],
                "o",
                color=colour,
                ms=6,
                label="_" if several else f"best validation (epoch {epochs[best]})",
            )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title or "train and validation loss per epoch")
    ax.grid(True, which="both", alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if several:  # runs by colour, curves by line style
        styles = [
            Line2D([], [], color="0.3", lw=1.6, label="train loss"),
            Line2D([], [], color="0.3", lw=1.6, ls="--", label="validation loss"),
            Line2D([], [], color="0.3", ls="", marker="o", label="best validation"),
        ]
        fig.legend(loc="outside right upper", title="run", fontsize="small")
        fig.legend(handles=styles, loc="outside right lower", fontsize="small")
    else:
        ax.legend()
    return save(fig, path)


# -- the task's figure -----------------------------------------------------------------------
def task_figure(task, model, dataset, folder: Path) -> Path | None:
    """Let the task draw on an empty figure (:meth:`rnnlab.specs.Task.figure`) and save it as
    ``<name>.png`` in ``folder``; None when the task draws no figure."""
    fig = new_figure(9.0, 5.5)
    name = task.figure(model, dataset, fig)
    if name is None:
        return None
    if (
        not isinstance(name, str)
        or not re.fullmatch(r"[A-Za-z0-9_.-]+", name)
        or name == LOSS_PNG.removesuffix(".png")
    ):
        raise RnnlabError(
            f"{type(task).__name__}.figure returned {name!r}: expected a file "
            f"name stem of letters, digits, '_', '-' or '.', other than 'loss'"
        )
    return save(fig, Path(folder) / f"{name}.png")


def run_figures(folder: Path, task, model, dataset, history: list[dict]) -> dict[str, Any]:
    """The figures of a run that just ended: ``loss.png`` and the task's own.

    Never raises for a figure that cannot be drawn: a run's results matter more than its
    pictures. Returns ``{"files": [...]}`` plus ``"note"`` saying what was not drawn and why.
    """
    if not available():
        return {"files": [], "note": f"no figures: matplotlib is not installed ({PLOT_HINT})"}
    folder = Path(folder)
    files, notes = [], []
    try:
        files.append(
            loss_figure(
                {folder.name: history}, folder / LOSS_PNG, f"{folder.name}: loss per epoch"
            ).name
        )
    except Exception as exc:  # noqa: BLE001 - reported in the summary instead
        notes.append(f"{LOSS_PNG} not drawn ({type(exc).__name__}: {exc})")
    try:
        path = task_figure(task, model, dataset, folder)
        if path is not None:
            files.append(path.name)
    except Exception as exc:  # noqa: BLE001 - a task plugin's bug must not fail the run
        origin = origin_of(exc)  # the plugin and its file
        who = f"plugin {origin.plugin}, {origin.where()}: " if origin is not None else ""
        notes.append(f"the task's figure was not drawn ({who}{type(exc).__name__}: {exc})")
    return {"files": files, **({"note": "; ".join(notes)} if notes else {})}


# -- backends compared -----------------------------------------------------------------------
def compare_chart(
    rows: Iterable[Mapping[str, Any]], path: Path, title: str = "training time per epoch"
) -> Path:
    """Bar chart of seconds per epoch per backend (lower is better), written to ``path``.

    Each row needs ``backend`` and ``seconds_per_epoch`` (the median); optional
    ``seconds_min`` / ``seconds_max`` draw the spread over repeats as an error bar, and ``case``
    groups bars (e.g. "T=10 H=32 B=32") with one colour per backend. The axis is logarithmic
    when the bars span more than a factor of 20.
    """
    rows = [dict(r) for r in rows]
    if not rows:
        raise RnnlabError("compare_chart: no rows to draw")
    for r in rows:
        if "backend" not in r or not isinstance(r.get("seconds_per_epoch"), int | float):
            raise RnnlabError(
                f"compare_chart: row {r!r} needs 'backend' and a number 'seconds_per_epoch'"
            )
    cases = list(dict.fromkeys(str(r.get("case", "")) for r in rows))
    backends = list(dict.fromkeys(str(r["backend"]) for r in rows))
    width = 0.8 / len(backends)
    fig = new_figure(max(5.0, 1.2 + 1.1 * len(cases) * len(backends) ** 0.5), 4.5)
    ax = fig.add_subplot()
    ticks: list[float] = []
    for k, backend in enumerate(backends):
        xs, ms, low, high = [], [], [], []
        for i, case in enumerate(cases):
            for r in rows:
                if str(r["backend"]) == backend and str(r.get("case", "")) == case:
                    ms_value = 1000 * r["seconds_per_epoch"]
                    xs.append(i + (k - (len(backends) - 1) / 2) * width)
                    ms.append(ms_value)
                    low.append(ms_value - 1000 * r.get("seconds_min", r["seconds_per_epoch"]))
                    high.append(1000 * r.get("seconds_max", r["seconds_per_epoch"]) - ms_value)
        has_spread = any(low) or any(high)
        ax.bar(
            xs,
            ms,
            width * 0.9,
            color=f"C{k % 10}",
            label=backend,
            yerr=[low, high] if has_spread else None,
            capsize=3,
        )
        for x, m, hi in zip(xs, ms, high, strict=True):  # the value above its error bar
            ax.annotate(
                f"{m:.3g}",
                (x, m + hi),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize="small",
            )
        ticks.extend(xs)
    values = [1000 * r["seconds_per_epoch"] for r in rows if r["seconds_per_epoch"] > 0]
    if values and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_ylabel("milliseconds per epoch (median, lower is better)")
    if any(cases):
        ax.set_xticks(range(len(cases)), cases)
    else:  # one group: name each bar
        ax.set_xticks(ticks, backends)
        ax.set_xlabel("backend")
    ax.set_title(title)
    ax.margins(y=0.15)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="backend")
    return save(fig, path)
