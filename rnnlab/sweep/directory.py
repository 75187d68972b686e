"""The sweep directory: ``sweep.json`` describing the grid, and one run directory per variant
and seed, each exactly what `rnnlab run` writes.

Running a sweep again in the same directory skips the runs that finished. It refuses when the
variants differ from those recorded (their resolved configurations, seed aside, are
fingerprinted): their runs would mix two sweeps. The seeds may change, since every run of a
variant has the same configuration whatever its seed; runs of seeds no longer listed stay on
disk and are left out of the report.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import RnnlabError
from ..store.lock import open_lock_file
from ..store.rundir import SUMMARY, write_file
from .plan import SweepPlan

SWEEP_JSON = "sweep.json"
LOCK = ".sweep.lock"
FORMAT = 1
MISSING, DONE, FAILED, INTERRUPTED = "missing", "done", "failed", "interrupted"


def run_state(path: Path) -> tuple[str, dict | None]:
    """``(state, summary)`` of one run directory: missing, done, failed or interrupted."""
    if not path.exists():
        return MISSING, None
    try:
        summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return INTERRUPTED, None  # created, then stopped before its first summary
    status = summary.get("status")
    if status in ("finished", "stopped"):
        return DONE, summary
    if status in ("failed", "diverged"):  # would fail the same way again if resumed
        return FAILED, summary
    return INTERRUPTED, summary  # "running" (its process died) or "interrupted" (Ctrl-C)


def describe(plan: SweepPlan) -> dict[str, Any]:
    """The content of sweep.json."""
    return {
        "format": FORMAT,
        "name": plan.name,
        "source": str(plan.source),
        "fingerprint": plan.fingerprint,
        "grid": plan.grid,
        "variants": [
            {"id": v.id, "label": v.label, "overrides": v.overrides, "config": v.config}
            for v in plan.variants
        ],
        "seeds": plan.seeds,
        "stats": plan.stats,
        "runs": [{"run": r.run, "variant": r.variant, "seed": r.seed} for r in plan.runs],
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def prepare_directory(path: Path, plan: SweepPlan) -> Path:
    """Create the sweep directory, or check that an existing one holds this same sweep; then
    (re)write sweep.json. Returns the absolute path."""
    path = resolve_folder(path)
    recorded = path / SWEEP_JSON
    if recorded.exists():
        _check_same_sweep(recorded, plan)
    elif path.exists() and any(p.name != LOCK for p in path.iterdir()):
        raise RnnlabError(
            f"{path}: exists and is not a sweep directory (no {SWEEP_JSON}); "
            f"choose another folder with --out"
        )
    make_directory(path)
    text = json.dumps(describe(plan), indent=2, default=str) + "\n"
    write_file(recorded, text.encode())
    return path


def resolve_folder(path: Path) -> Path:
    """``path`` made absolute with its symbolic links resolved; a loop of links, or a path
    that cannot be looked up, is a message naming it."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a loop of symlinks"
        raise RnnlabError(
            f"{path}: cannot use this folder ({why}); choose another with --out"
        ) from None


def make_directory(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RnnlabError(f"{path}: cannot create the sweep directory: {exc.strerror}") from None
    return path


def _check_same_sweep(recorded: Path, plan: SweepPlan) -> None:
    try:
        old = json.loads(recorded.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RnnlabError(f"{recorded}: unreadable ({exc})") from None
    if old.get("fingerprint") == plan.fingerprint:
        return
    raise RnnlabError(
        f"{recorded.parent} holds a different sweep ({_difference(old, plan)}); "
        f"its runs would mix with this one's. Choose another folder with --out, "
        f"or delete that one to start again"
    )


def _difference(old: dict, plan: SweepPlan) -> str:
    """The first thing that differs between the recorded sweep and this one, in words."""
    before = old.get("variants", [])
    if len(before) != len(plan.variants):
        return f"{len(before)} variants there, {len(plan.variants)} here"
    for was, now in zip(before, plan.variants, strict=True):
        for table, values in now.config.items():
            for key, value in values.items():
                prior = was.get("config", {}).get(table, {}).get(key, "<unset>")
                if prior != value:
                    return (
                        f"variant {now.id} ({now.label}): {table}.{key} was {prior!r}, is {value!r}"
                    )
    return f"fingerprint {old.get('fingerprint')} there, {plan.fingerprint} here"


@contextmanager
def sweep_lock(path: Path):
    """Hold the sweep directory for this invocation: a second `rnnlab sweep` on the same
    directory at the same time would start the same runs twice. (Advisory lock; a no-op
    where fcntl does not exist.)"""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        fd = open_lock_file(path / LOCK, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise RnnlabError(
            f"{path / LOCK}: cannot open the sweep's lock file ({exc.strerror or exc}); a sweep "
            f"writes its runs in its directory, so it must be writable (`rnnlab runs {path}` "
            f"shows the runs it holds)"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RnnlabError(
                f"{path}: another rnnlab sweep is running in this directory"
            ) from None
        yield
    finally:
        os.close(fd)
