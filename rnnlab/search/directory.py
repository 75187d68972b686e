"""The search directory: ``search.json`` (the search, its target number of trials), the study's
journal, ``trials/`` (one record per trial that ended) and one run directory per trial and seed.

Running the same search again resumes it; a directory holding another search (a different
experiment, space, metric, sampler, pruner or seeds) is refused. ``--more N`` raises the target.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import RnnlabError
from .plan import SearchPlan

SEARCH_JSON = "search.json"
LOCK = ".search.lock"
FORMAT = 1


def read_search(directory: Path) -> dict:
    path = Path(directory) / SEARCH_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RnnlabError(f"{path}: unreadable ({exc})") from None


def prepare_directory(directory: Path, plan: SearchPlan, more: int = 0) -> int:
    """Create (or check) the search directory and (re)write search.json; return the number of
    complete or pruned trials the study is to end with."""
    directory = Path(directory)
    target = plan.settings.trials
    if (directory / SEARCH_JSON).exists():
        old = read_search(directory)
        if old.get("fingerprint") != plan.fingerprint:
            raise RnnlabError(
                f"{directory} holds a different search (the experiment or its [search] "
                f"table changed; only trials may change). Choose another folder with --out, "
                f"or delete that one to start again"
            )
        target = max(target, int(old.get("trials", 0)))
    elif directory.exists() and any(p.name != LOCK for p in directory.iterdir()):
        raise RnnlabError(
            f"{directory}: exists and is not a search directory (no {SEARCH_JSON}); "
            f"choose another folder with --out"
        )
    target += more
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "name": plan.name,
        "study": plan.name,
        "source": str(plan.source),
        "fingerprint": plan.fingerprint,
        "trials": target,
        "direction": plan.settings.direction,
        "metric": plan.settings.metric,
        "search": plan.settings.to_dict() | {"trials": target},
        "stats": plan.stats,
        "base": plan.base,
        "plugin_files": list(plan.plugin_files),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = directory / f".{SEARCH_JSON}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, directory / SEARCH_JSON)
    return target


@contextmanager
def search_lock(directory: Path):
    """One `rnnlab search` per directory at a time (it alone asks and tells its study)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    with open(Path(directory) / LOCK, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RnnlabError(f"{directory}: another rnnlab search is running in it") from None
        yield
