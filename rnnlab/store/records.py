"""Reading run directories back: what `rnnlab runs`, `show`, `diff` and `plot` list and compare.

Reading never raises for a damaged run: a directory with a missing or unreadable file becomes a
:class:`RunRecord` whose ``problem`` says what is wrong, so one broken run never hides the rest.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import RnnlabError
from .liveness import died
from .rundir import CONFIG, METRICS, SUMMARY, RunDir, read_history, read_regular

MARKERS = (CONFIG, SUMMARY, METRICS)  # any of these makes a folder a run directory
MAX_DEPTH = 2  # runs/<run> and runs/<sweep>/<run>
STAMP = re.compile(r"(\d{8}-\d{6})(?:-\d+)?$")  # RunDir.create's suffix


@dataclass
class RunRecord:
    """One run as read from its directory. Missing pieces are empty, never an exception."""

    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # why a file could not be read
    died: str | None = None  # why a run that says "running" is not: its writer is gone

    @property
    def status(self) -> str:
        """The summary's status ("died" for a "running" run whose process is gone);
        "incomplete" without a summary, "broken" when unreadable."""
        if self.died:
            return "died"
        if self.summary.get("status"):
            return str(self.summary["status"])
        return "broken" if self.problem else "incomplete"

    def get(self, table: str, key: str) -> Any:
        """A config value, or None."""
        section = self.config.get(table)
        return section.get(key) if isinstance(section, dict) else None

    @property
    def task(self) -> str | None:
        return self.summary.get("task") or self.get("task", "name")

    @property
    def backend(self) -> str | None:
        return self.summary.get("backend") or self.get("train", "backend")

    @property
    def cell(self) -> str | None:
        return self.summary.get("cell") or self.get("model", "cell")

    @property
    def epochs_run(self) -> int:
        return int(self.summary.get("epochs_run") or len(self.history))

    @property
    def epochs_planned(self) -> int | None:
        return self.get("train", "epochs")

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        metrics = self.summary.get("metrics")
        return metrics if isinstance(metrics, dict) else {}

    def metric(self, dotted: str) -> float | None:
        """``"test.mse"`` -> the final value, or None when the run has none."""
        split, _, name = dotted.partition(".")
        value = self.metrics.get(split, {}).get(name)
        return float(value) if isinstance(value, int | float) else None

    @property
    def duration(self) -> float | None:
        seconds = self.summary.get("wall_seconds")
        return float(seconds) if isinstance(seconds, int | float) else None

    @property
    def started(self) -> datetime | None:
        """When the run started: the time stamp in its name, else when its config was written."""
        match = STAMP.search(self.path.name)
        if match:
            return datetime.strptime(match.group(1), "%Y%m%d-%H%M%S")
        for name in (CONFIG, SUMMARY, METRICS):
            try:
                return datetime.fromtimestamp((self.path / name).stat().st_mtime)
            except OSError:
                continue
        return None

    def to_json(self) -> dict[str, Any]:
        started = self.started
        return {
            "name": self.name,
            "path": str(self.path),
            "started": started.isoformat(timespec="seconds") if started else None,
            "status": self.status,
            "task": self.task,
            "backend": self.backend,
            "cell": self.cell,
            "hyper_parameters": hyper_parameters(self),
            "epochs_run": self.epochs_run,
            "epochs": self.epochs_planned,
            "metrics": self.metrics,
            "wall_seconds": self.duration,
            "seconds_per_epoch": self.summary.get("seconds_per_epoch"),
            "problem": self.why,
        }

    @property
    def why(self) -> str | None:
        """Why the run did not finish cleanly, or what is damaged; None when nothing is."""
        return (
            self.died
            or self.problem
            or self.summary.get("error")
            or self.summary.get("stop_reason")
        )


def hyper_parameters(run: RunRecord) -> dict[str, Any]:
    """The settings people tell runs apart by (beyond task, backend and cell)."""
    keys = (
        ("model", "hidden_size"),
        ("model", "layers"),
        ("train", "optimizer"),
        ("train", "learning_rate"),
        ("train", "batch_size"),
        ("train", "epochs"),
        ("experiment", "seed"),
    )
    return {key: run.get(table, key) for table, key in keys if run.get(table, key) is not None}


def read_run(path: Path, name: str | None = None) -> RunRecord:
    """Read a run directory; a file that is missing or unreadable is noted in ``problem``."""
    path = Path(path)
    run = RunRecord(path, name or path.name)
    problems = []
    try:
        run.config = tomllib.loads(read_regular(path / CONFIG).decode("utf-8"))
    except FileNotFoundError:
        problems.append(f"no {CONFIG}")
    except (OSError, ValueError) as exc:
        problems.append(f"{CONFIG} unreadable ({exc})")
    if (path / SUMMARY).exists():
        try:
            summary = RunDir(path).read_summary()
            run.summary = summary if isinstance(summary, dict) else {}
        except RnnlabError:
            problems.append(f"{SUMMARY} unreadable")
    run.history = read_history(path, problems)
    run.problem = "; ".join(problems) or None
    if run.summary.get("status") == "running":
        run.died = died(path)
    return run


def is_run_dir(path: Path) -> bool:
    return any((path / marker).is_file() for marker in MARKERS)


def find_runs(root: Path) -> list[RunRecord]:
    """Every run directory under ``root`` (``root`` itself, its folders, or theirs, as a sweep
    makes), named by its path relative to ``root``."""
    root = Path(root)
    if is_run_dir(root):
        return [read_run(root)]
    found = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if is_run_dir(child):
                found.append(read_run(child, child.relative_to(root).as_posix()))
            elif depth < MAX_DEPTH:
                walk(child, depth + 1)

    walk(root, 1)
    return found


def open_run(path: Path) -> RunRecord:
    """A run directory the user named; an RnnlabError when it is not one."""
    path = Path(path)
    if not path.exists():
        raise RnnlabError(f"{path}: no such run directory")
    if not path.is_dir() or not is_run_dir(path):
        raise RnnlabError(
            f"{path}: not a run directory (no {CONFIG}, {SUMMARY} or {METRICS}); "
            f"`rnnlab runs` lists the run directories"
        )
    return read_run(path)


def parse_metric_key(key: str, splits=("train", "val", "test"), option: str = "") -> str:
    """Check a ``split.metric`` key such as ``test.mse``; return it. ``option`` names the
    command-line option it came from, for the message."""
    split, dot, name = key.partition(".")
    if not dot or not name or split not in splits:
        where = f"{option} {key!r}" if option else repr(key)
        raise RnnlabError(
            f"{where}: expected SPLIT.METRIC with SPLIT one of "
            f"{', '.join(splits)} (e.g. test.mse or val.loss)"
        )
    return key


def metric_keys(runs: list[RunRecord]) -> list[str]:
    """Every ``split.metric`` any of the runs has, in order of first appearance."""
    keys: dict[str, None] = {}
    for run in runs:
        for split, values in run.metrics.items():
            if isinstance(values, dict):
                for name in values:
                    keys[f"{split}.{name}"] = None
    return list(keys)


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """``{"train": {"epochs": 3}}`` -> ``{"train.epochs": 3}``."""
    out = {}
    for table, values in config.items():
        if isinstance(values, dict):
            for key, value in values.items():
                out[f"{table}.{key}"] = value
        else:
            out[table] = values
    return out
