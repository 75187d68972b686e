"""A recorded run's trained model back in memory, to draw its figures again (`rnnlab plot`).

The experiment is rebuilt from the run's config.toml, with its task data built again from the
seed (so the data are the run's own) and files resolved beside the experiment file the run
started from (summary.json ``source``) when that file still exists.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .config import build_experiment, plugin_files, read_toml
from .errors import RnnlabError
from .history import RunRecord
from .plugins import Registry
from .runs import CONFIG, PARAMS, RunDir
from .train import Session, prepare


def original_source(run: RunRecord) -> Path | None:
    """The experiment file the run started from, when it is still there."""
    source = run.summary.get("source")
    return Path(source) if source and Path(source).is_file() else None


def restore_session(run: RunRecord, plugin_paths=()) -> tuple[Session, Registry]:
    """The run's task, data and model with its saved parameters; RnnlabError when impossible."""
    config = run.path / CONFIG
    raw = read_toml(config)
    source = original_source(run)
    files = [*plugin_files(raw, source or config), *(Path(p) for p in plugin_paths)]
    registry = Registry(files)
    exp = build_experiment(raw, registry, source=config)
    if source is not None:
        exp = replace(exp, source=source)
    session = prepare(exp, registry)
    saved = RunDir(run.path).load_params() if (run.path / PARAMS).exists() else None
    if saved is None:
        raise RnnlabError(f"{run.path}: no {PARAMS} (the run saved no parameters)")
    params = session.model.params
    if {k: v.shape for k, v in saved.items()} != {k: v.shape for k, v in params.items()}:
        raise RnnlabError(f"{run.path / PARAMS}: its parameters do not fit the model of "
                          f"{CONFIG}")
    for name, value in saved.items():
        params[name][...] = value
    return session, registry
