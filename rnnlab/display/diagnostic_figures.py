"""The diagnostics drawn (see :mod:`rnnlab.training.diagnostics`): gradient_flow.png (the norm of
dL/dh_t
against the step, log scale, one line per recorded epoch), recurrent_health.png (spectral radii,
saturation and the lstm forget gate over epochs), and several runs' gradient flow overlaid.

matplotlib is imported only through :mod:`rnnlab.display.figures`, inside the functions that draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import figures as plots

FLOW_PNG = "gradient_flow.png"
HEALTH_PNG = "recurrent_health.png"
FLOW_OVERLAY = "gradient-flow-overlay.png"
END = "end of training"


def _positive(norms) -> list[float]:
    """Norms ready for a log axis: a 0 (or a non-number) becomes NaN, a gap in the line."""
    return [
        v if isinstance(v, int | float) and math.isfinite(v) and v > 0 else math.nan for v in norms
    ]


def flow_lines(history: list[dict], diagnostics: Mapping[str, Any] | None) -> dict[str, list]:
    """The gradient flows a run recorded: ``{"epoch 5": norms, ..., "end of training": norms}``."""
    lines = {
        f"epoch {r['epoch']}": r["gradient_norm_by_step"]
        for r in history
        if has_flow(r) and "epoch" in r
    }
    if has_flow(diagnostics):
        lines[END] = diagnostics["gradient_norm_by_step"]
    return lines


def has_flow(record: Any) -> bool:
    """Whether ``record`` (an epoch's record, or summary.json's diagnostics) holds a gradient
    flow to draw."""
    norms = record.get("gradient_norm_by_step") if isinstance(record, Mapping) else None
    return isinstance(norms, list) and len(norms) > 0


def gradient_flow_figure(
    lines: Mapping[str, list], path: Path, title: str = "", *, runs: bool = False
) -> Path:
    """||dL/dh_t|| against the step t (log scale). ``lines`` maps a label to its norms. For one
    run (``runs=False``) the epochs go from light to dark and the end of training is black; for
    several runs (``runs=True``) each run has its own colour."""
    from matplotlib import colormaps

    fig = plots.new_figure(10.0 if runs else 8.0, 4.5)
    ax = fig.add_subplot()
    epochs = [k for k in lines if k != END]
    shades = colormaps["viridis"]
    for k, (label, norms) in enumerate(lines.items()):
        steps = range(1, len(norms) + 1)
        if runs:
            style = {"color": f"C{k % 10}", "lw": 1.8}
        elif label == END:
            style = {"color": "black", "lw": 2.0, "ls": "--"}  # the best epoch shows through
        else:
            share = epochs.index(label) / max(len(epochs) - 1, 1)
            style = {"color": shades(0.15 + 0.7 * share), "lw": 1.2, "alpha": 0.9}
        values = _positive(norms)
        first, last = values[0], values[-1]
        note = f" (first/last {first / last:.2g})" if last > 0 and first == first else ""
        ax.plot(steps, values, label=f"{label}{note}", **style)
    ax.set_yscale("log")
    ax.set_xlabel("step t (1 = first)")
    ax.set_ylabel("||dL/dh_t|| of the top layer (log scale)")
    ax.set_title(title or "gradient flow through time")
    ax.grid(True, which="both", alpha=0.3)
    if runs or len(lines) > 1:
        fig.legend(loc="outside right upper", fontsize="small", title="run" if runs else "recorded")
    else:
        ax.legend(fontsize="small")
    return plots.save(fig, path)


def _health_series(history: list[dict], group: str) -> dict[str, tuple[list, list]]:
    """``{"l0.f": (epochs, values)}`` for one group of the per-epoch health records."""
    out: dict[str, tuple[list, list]] = {}
    for r in history:
        values = r.get("health", {}).get(group) if isinstance(r.get("health"), dict) else None
        if not isinstance(values, dict) or "epoch" not in r:
            continue
        for key, v in values.items():
            if isinstance(v, int | float):
                out.setdefault(key, ([], []))
                out[key][0].append(r["epoch"])
                out[key][1].append(v)
    return out


def recurrent_health_figure(history: list[dict], path: Path, title: str = "") -> Path | None:
    """Spectral radius of each W_hh (block), saturated fraction and (lstm) mean forget gate per
    epoch; None when the run recorded no health."""
    from matplotlib.ticker import MaxNLocator

    panels = [
        (group, label, _health_series(history, group))
        for group, label in (
            ("spectral_radius", "spectral radius of W_hh"),
            ("saturated", "saturated fraction"),
            ("forget_gate", "mean forget gate"),
        )
    ]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    fig = plots.new_figure(4.0 * len(panels) + 1.0, 4.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    recorded = sorted({e for _, _, series in panels for es, _ in series.values() for e in es})
    for ax, (group, label, series) in zip(axes, panels, strict=True):
        for key, (epochs, values) in series.items():
            ax.plot(epochs, values, marker="o" if len(epochs) < 20 else None, ms=3, label=key)
        if group == "spectral_radius":
            ax.axhline(1.0, color="0.5", ls=":", lw=1)
        else:
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        if len(recorded) <= 12:  # few epochs: one tick each (a locator would add fractions)
            ax.set_xticks(recorded)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(recorded[0] - 0.5, recorded[-1] + 0.5)
        ax.legend(fontsize="x-small", ncols=2 if len(series) > 6 else 1)
    fig.suptitle(title or "recurrent health per epoch")
    return plots.save(fig, path)


def diagnostic_figures(
    folder: Path, history: list[dict], diagnostics: Mapping[str, Any] | None
) -> list[Path]:
    """gradient_flow.png and recurrent_health.png in ``folder``, for what the run recorded."""
    folder, files = Path(folder), []
    lines = flow_lines(history, diagnostics)
    if lines:
        files.append(
            gradient_flow_figure(
                lines, folder / FLOW_PNG, f"{folder.name}: gradient flow through time"
            )
        )
    path = recurrent_health_figure(
        history, folder / HEALTH_PNG, f"{folder.name}: recurrent health per epoch"
    )
    if path is not None:
        files.append(path)
    return files


def run_diagnostic_figures(
    folder: Path, history: list[dict], diagnostics: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The diagnostics' figures of a run that just ended, as summary.json's
    ``diagnostics.figures``: ``{"files": [...]}`` plus ``"note"`` when one was not drawn. Never
    raises: a run's results matter more than its pictures."""
    if not plots.available():  # looked up on the module, so a test can switch it off
        return {"files": [], "note": f"no figures: matplotlib is not installed ({plots.PLOT_HINT})"}
    try:
        return {"files": [p.name for p in diagnostic_figures(folder, history, diagnostics)]}
    except Exception as exc:  # noqa: BLE001 - reported in the summary instead
        return {"files": [], "note": f"not drawn ({type(exc).__name__}: {exc})"}
