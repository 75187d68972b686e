"""What the terminal shows: progress while training, and rich tables afterwards.

On a terminal (and in a Jupyter notebook with ipywidgets) the progress is a rich bar; when
output goes to a file or a pipe it is one plain line per epoch, and a line every
:data:`HEARTBEAT` seconds while one epoch lasts longer (so a log never falls silent).
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def fmt(value) -> str:
    """Numbers compactly: 4 significant digits, scientific when small or large."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value == 0 or math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"


# seconds between two lines of a long epoch when the output is a file or a pipe
HEARTBEAT = 30.0


def duration(seconds: float | None) -> str:
    """A time as people read it: ``412.3 ms``, ``12.4 s``, ``8m32s``, ``2h05m`` ("" for None)."""
    if seconds is None:
        return ""
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 180:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def epoch_line(record: dict, epochs: int) -> str:
    return (
        f"epoch {record['epoch']}/{epochs}  loss {fmt(record['loss'])}  "
        f"val_loss {fmt(record['val_loss'])}  best {record['best_epoch']}  "
        f"{duration(record['seconds'])}"
    )


_last_status = [0.0]  # time.monotonic() of the last status_line


def status_line(console: Console, message: str) -> None:
    """A one-off status line (the backend's warm-up, what it compiles): printed as it is, and
    counted as output by the epochs' :class:`Heartbeat`, which stays quiet meanwhile."""
    _last_status[0] = time.monotonic()
    console.print(message, highlight=False)


class Heartbeat:
    """Prints ``epoch N/M still running: 2m 30s so far`` every ``interval`` seconds that pass
    without an epoch line, from a daemon thread, until stopped."""

    def __init__(self, console: Console, epochs: int, interval: float | None = None):
        self.console, self.epochs = console, epochs
        self.interval = interval if interval is not None else HEARTBEAT
        self.epoch, self.started = 1, time.monotonic()
        self.lock, self.stopped = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._beat, name="rnnlab-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def epoch_done(self, record: dict) -> None:
        with self.lock:
            self.epoch, self.started = int(record["epoch"]) + 1, time.monotonic()

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                epoch, elapsed = self.epoch, time.monotonic() - self.started
            quiet = time.monotonic() - _last_status[0]  # a status line is not silence
            if min(elapsed, quiet) >= self.interval * 0.99 and epoch <= self.epochs:
                self.console.print(
                    f"epoch {epoch}/{self.epochs} still running: {duration(elapsed)} so far",
                    highlight=False,
                    soft_wrap=True,
                )


def live_bar(console: Console) -> bool:
    """Whether progress can be a live bar: on a terminal, and in a Jupyter notebook that can show
    widgets (rich draws the bar in an ipywidgets ``Output``; without ipywidgets it could only
    warn, so the notebook gets one line per epoch instead, as a file does)."""
    if console.is_jupyter:
        try:
            import ipywidgets  # noqa: F401  (what rich's live display needs in a notebook)
        except ImportError:
            return False
        return True
    return console.is_terminal


@contextmanager
def epoch_progress(console: Console, epochs: int):
    """Yield a callback that shows one epoch's record."""
    if not live_bar(console):
        with Heartbeat(console, epochs) as heartbeat:

            def show_line(record):
                heartbeat.epoch_done(record)
                console.print(epoch_line(record, epochs), highlight=False, soft_wrap=True)

            yield show_line
        return
    columns = (
        TextColumn("[bold]epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=epochs, status="")

        def show(record):
            status = (
                f"loss {fmt(record['loss'])}  val_loss {fmt(record['val_loss'])}  "
                f"best {record['best_epoch']}"
            )
            progress.update(task, completed=record["epoch"], status=status)

        yield show


def metrics_table(summary: dict) -> Table:
    """Final metrics: one row per metric, one column per split."""
    metrics = summary.get("metrics", {})
    splits = list(metrics)
    table = Table(
        title=f"{summary['experiment']}: {summary['task']} on {summary['backend']} "
        f"({summary['cell']}, seed {summary['seed']}) — {summary['status']}"
    )
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    names = list(dict.fromkeys(k for split in splits for k in metrics[split]))
    for name in names:
        table.add_row(name, *(fmt(metrics[s].get(name, "")) for s in splits))
    return table


def demo_table(demo: dict) -> Table | str:
    if demo.get("rows") is not None:
        table = Table(title=demo["title"])
        for column in demo.get("columns") or []:
            table.add_column(str(column), justify="right")
        for row in demo["rows"]:
            table.add_row(*(str(v) for v in row))
        return table
    # the text is shown as it is: brackets in it are not rich markup
    return f"[bold]{escape(demo['title'])}[/bold]\n{escape(demo.get('text', ''))}"


def gradient_flow_line(summary: dict) -> str | None:
    """``gradient flow: ||dL/dh_1|| / ||dL/dh_100|| = 4e-17 (...)`` from a run's summary, why
    it was not measured, or None when the summary says nothing about it (an older run)."""
    diag = summary.get("diagnostics")
    norms = diag.get("gradient_norm_by_step") if isinstance(diag, dict) else None
    if not isinstance(norms, list) or not norms:
        note = diag.get("note") if isinstance(diag, dict) else None
        return f"gradient flow: not measured ({note})" if isinstance(note, str) else None
    first, last, T = norms[0], norms[-1], len(norms)
    ratio = f"{first / last:.2g}" if last else "undefined (the last step's norm is 0)"
    return (
        f"gradient flow: ||dL/dh_1|| / ||dL/dh_{T}|| = {ratio} ({first:.3g} / {last:.3g}, "
        f"{diag.get('sample_size', '?')} validation sequences)"
    )


def blas_line(summary: dict) -> str | None:
    """``BLAS: openblas 0.3.31, 1 thread (automatic ...)``: what the run's matrix products ran
    on, or None when the summary does not say (an older run, or no BLAS loaded)."""
    blas = summary.get("blas")
    if not isinstance(blas, dict) or not blas.get("library"):
        return None
    n = blas.get("threads")
    return f"BLAS: {blas['library']}, {n} thread{'s' if n != 1 else ''} ({blas.get('chosen')})"


def print_summary(console: Console, summary: dict, run_path) -> None:
    console.print(metrics_table(summary))
    if "demo" in summary:
        console.print(demo_table(summary["demo"]))
    spe = summary.get("seconds_per_epoch")
    timing = f"{duration(spe)} per epoch, " if spe else ""
    console.print(
        f"{summary.get('epochs_run', 0)} epochs, {timing}best epoch "
        f"{summary.get('best_epoch')}, {duration(summary.get('wall_seconds', 0))} in all"
    )
    blas = blas_line(summary)
    if blas:
        console.print(escape(blas), highlight=False)
    figures = summary.get("figures", {})
    if figures.get("files"):
        console.print(f"figures: {escape(', '.join(figures['files']))}", highlight=False)
    if figures.get("note"):
        console.print(f"[yellow]{escape(figures['note'])}[/yellow]", highlight=False)
    flow = gradient_flow_line(summary)
    if flow:
        drawn = summary["diagnostics"].get("figures", {}).get("files")
        console.print(
            escape(flow) + (f"; {', '.join(drawn)}" if drawn else ""),
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"run saved in [bold]{escape(str(run_path))}[/bold]", highlight=False, soft_wrap=True
    )


def plugins_table(registry) -> Table:
    table = Table(title="rnnlab plugins")
    for column in ("plugin", "version", "source", "status", "tasks", "backends", "hooks"):
        table.add_column(column)
    for info in registry.plugins.values():
        backends = []
        for name in info.backends:
            spec = registry.backends.get(name)
            reason = spec.unavailable() if spec is not None else "claimed by two plugins"
            backends.append(f"{name} (unavailable: {reason})" if reason else name)
        status = info.status if info.status == "ok" else f"[red]{info.status}[/red]"
        table.add_row(
            info.name,
            info.version,
            f"{info.source}: {info.origin}" if info.source != "built-in" else info.source,
            status,
            ", ".join(info.tasks),
            ", ".join(backends),
            ", ".join(info.hooks),
        )
    return table
