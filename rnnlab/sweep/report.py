"""What a sweep shows: live progress while it runs, and afterwards one row per variant with the
mean and standard deviation over seeds of every metric and of seconds per epoch, best first
(lowest mean validation loss: the quantity training selects on)."""

from __future__ import annotations

import importlib.util
import math
import threading
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..analysis.collect import collect_sweep
from ..analysis.settings import parse_stats_table
from ..analysis.summary import stats_of
from ..analysis.tables import print_stats
from ..display.terminal import fmt
from ..errors import RnnlabError
from ..executors.base import RunResult
from .driver import SweepOutcome

RANK_SPLIT, RANK_METRIC = "val", "loss"


# -- live progress ---------------------------------------------------------------------------
class SweepDisplay:
    """Runs done / running / failed: a rich bar on a terminal, one line per run otherwise.
    ``started`` may be called from another thread (Dask's event loop)."""

    def __init__(self, console: Console):
        self.console = console
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.ended: set[str] = set()
        self.done = self.failed = self.previous = self.total = 0
        self.progress = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()

    def begin(self, total: int, previous: int, executor: str, directory: Path) -> None:
        self.total, self.previous, self.done = total, previous, previous
        self.console.print(
            f"sweep of {total} runs in [bold]{directory}[/bold] on {executor}"
            + (f"; {previous} finished before, skipped" if previous else ""),
            highlight=False,
        )
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task(
                "sweep", total=total, completed=previous, status=self._status()
            )
            self.progress.start()

    def _status(self) -> str:
        return (
            f"done {self.done}  running {len(self.running)}  [red]failed {self.failed}[/red]"
            if self.failed
            else f"done {self.done}  running {len(self.running)}  failed 0"
        )

    def _refresh(self) -> None:
        if self.progress is not None:
            self.progress.update(
                self.task, completed=self.done + self.failed, status=self._status()
            )

    def note(self, message: str) -> None:
        """A line about the sweep's runs before they start (one that died, resumed)."""
        self.console.print(message, highlight=False, markup=False)

    def started(self, job) -> None:
        with self.lock:
            if job.run not in self.ended:
                self.running.add(job.run)
            self._refresh()

    def finished(self, result: RunResult) -> None:
        with self.lock:
            self.running.discard(result.run)
            self.ended.add(result.run)
            if result.ok:
                self.done += 1
            else:
                self.failed += 1
            self._refresh()
            if self.progress is None:
                self.console.print(
                    f"[{self.done + self.failed}/{self.total}] {run_line(result)}", highlight=False
                )


def run_line(result: RunResult) -> str:
    if not result.ok:
        return f"{result.run} failed: {result.error}"
    s = result.summary or {}
    val = s.get("metrics", {}).get(RANK_SPLIT, {}).get(RANK_METRIC)
    return f"{result.run} {result.status} in {s.get('wall_seconds', 0):.1f} s" + (
        f"  {RANK_SPLIT} {RANK_METRIC} {fmt(val)}" if val is not None else ""
    )


# -- aggregation -----------------------------------------------------------------------------
def _stats(values: list[float]) -> dict:
    n = len(values)
    return {
        "mean": float(np.mean(values)) if n else None,
        "std": float(np.std(values, ddof=1)) if n > 1 else None,
        "n": n,
    }


def aggregate(outcome: SweepOutcome) -> list[dict]:
    """One entry per variant, best first."""
    rows = []
    for v in outcome.plan.variants:
        results = [r for r in outcome.results.values() if r.variant == v.index]
        ok = [r.summary for r in results if r.ok and r.summary]
        metrics: dict[str, dict[str, list]] = {}
        for s in ok:
            for split, values in s.get("metrics", {}).items():
                for name, value in values.items():
                    metrics.setdefault(split, {}).setdefault(name, []).append(value)
        spe = [s["seconds_per_epoch"] for s in ok if s.get("seconds_per_epoch") is not None]
        rows.append(
            {
                "variant": v.id,
                "label": v.label,
                "overrides": v.overrides,
                "seeds": len(outcome.plan.seeds),
                "finished": len(ok),
                "failed": sum(not r.ok for r in results),
                "metrics": {
                    split: {name: _stats(vals) for name, vals in names.items()}
                    for split, names in metrics.items()
                },
                "seconds_per_epoch": _stats(spe),
            }
        )

    def rank(row):
        mean = row["metrics"].get(RANK_SPLIT, {}).get(RANK_METRIC, {}).get("mean")
        return (mean is None or math.isnan(mean), mean if mean is not None else 0.0)

    return sorted(rows, key=rank)


def to_json(outcome: SweepOutcome) -> dict:
    return {
        "sweep": outcome.plan.name,
        "directory": str(outcome.directory),
        "fingerprint": outcome.plan.fingerprint,
        "executor": outcome.executor,
        "seeds": outcome.plan.seeds,
        "grid": outcome.plan.grid,
        "stopped_early": outcome.stopped_early,
        "ranked_by": f"{RANK_SPLIT} {RANK_METRIC}",
        "variants": aggregate(outcome),
        "stats": sweep_stats(outcome),
        "runs": [
            {
                "run": r.run,
                "variant": outcome.plan.variants[r.variant].id,
                "seed": r.seed,
                "status": r.status,
                "previous": r.previous,
                "attempts": r.attempts,
                "error": r.error,
            }
            for r in outcome.results.values()
        ],
    }


def sweep_stats(outcome: SweepOutcome) -> dict | None:
    """The [stats] metric's intervals and pairwise tests (what `rnnlab stats` shows), when
    scipy is installed and some variant has two finished seeds; else None."""
    if importlib.util.find_spec("scipy") is None:
        return None
    collected = collect_sweep(outcome.directory)
    if not any(len(by_seed) > 1 for by_seed in collected.runs.values()):
        return None
    settings = parse_stats_table(outcome.plan.stats, str(outcome.plan.source))
    try:
        return stats_of(collected, settings)
    except RnnlabError:  # no finished run records the metric: the tables above say why
        return None


# -- tables ----------------------------------------------------------------------------------
def _cell(stats: dict | None, scale: float = 1.0) -> str:
    if not stats or stats.get("mean") is None:
        return "—"
    mean = fmt(stats["mean"] * scale)
    return mean if stats["std"] is None else f"{mean}\n± {fmt(stats['std'] * scale)}"


def sweep_table(outcome: SweepOutcome) -> Table:
    """Variants best first: runs, validation loss and time per epoch."""
    table = Table(
        title=f"sweep {outcome.plan.name}: mean ± std over seeds, best "
        f"{RANK_SPLIT} {RANK_METRIC} first"
    )
    for column in ("variant", "runs", f"{RANK_SPLIT} {RANK_METRIC}", "ms/epoch"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in aggregate(outcome):
        runs = f"{row['finished']}/{row['seeds']}" + (
            f" [red]({row['failed']} failed)[/red]" if row["failed"] else ""
        )
        table.add_row(
            "\n".join([row["variant"], *row["label"].split(" ")]),
            runs,
            _cell(row["metrics"].get(RANK_SPLIT, {}).get(RANK_METRIC)),
            _cell(row["seconds_per_epoch"], 1000.0),
        )
    return table


def metrics_table(outcome: SweepOutcome, split: str = "test") -> Table | None:
    """Every metric of one split, variants in the same order (a table of its own, since a
    task may have many metrics)."""
    rows = aggregate(outcome)
    names = list(dict.fromkeys(n for row in rows for n in row["metrics"].get(split, {})))
    if not names:
        return None
    table = Table(title=f"{split} metrics: mean ± std over seeds")
    table.add_column("variant")
    for name in names:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(row["variant"], *(_cell(row["metrics"].get(split, {}).get(n)) for n in names))
    return table


def failures_table(outcome: SweepOutcome) -> Table | None:
    failed = outcome.failed
    if not failed:
        return None
    table = Table(title="failed runs")
    table.add_column("run")
    table.add_column("attempts", justify="right")
    table.add_column("error")
    for r in failed:
        table.add_row(r.run, str(r.attempts), r.error or "")
    return table


def print_report(console: Console, outcome: SweepOutcome, *, tracebacks: bool = False) -> None:
    console.print(sweep_table(outcome))
    metrics = metrics_table(outcome)
    if metrics is not None:
        console.print(metrics)
    statistics = sweep_stats(outcome)
    if statistics is not None:
        print_stats(console, statistics, statistics["metric"], statistics["labels"])
    failures = failures_table(outcome)
    if failures is not None:
        console.print(failures)
        if tracebacks:
            for r in outcome.failed:
                if r.traceback:
                    console.print(f"[bold]{r.run}[/bold]\n{r.traceback}", highlight=False)
    if outcome.stopped_early:
        console.print(
            "stopped after the first failure (--fail-fast); run again to go on", highlight=False
        )
    console.print(f"sweep saved in [bold]{outcome.directory}[/bold]", highlight=False)
