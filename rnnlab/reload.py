"""A recorded run back in memory: its experiment (from config.toml), its plugins, and its trained
parameters, for `rnnlab resume`, `rnnlab generate` and `rnnlab plot`.

Task files and plugin files are resolved beside the experiment file the run started from
(summary.json ``source``), as they were when it ran.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .config import Experiment, build_experiment, plugin_files, read_with_overrides
from .errors import RnnlabError
from .model import Model
from .plugins import Registry
from .runs import CONFIG, PARAMS, RunDir


def original_source(run_dir: RunDir) -> Path | None:
    """The experiment file a run started from (relative task files and plugins live beside it)."""
    try:
        source = run_dir.read_summary().get("source")
    except RnnlabError:
        return None
    return Path(source) if source else None


def recorded_raw(run_dir: RunDir, sets=()) -> tuple[dict, dict]:
    """The run's config.toml tables with ``--set`` overrides applied, and their origins."""
    return read_with_overrides(run_dir.path / CONFIG, sets)


def run_registry(run_dir: RunDir, raw: dict, plugin_paths=()) -> Registry:
    """The plugins a run used: those its experiment names, plus ``plugin_paths``."""
    base = original_source(run_dir) or run_dir.path / CONFIG
    return Registry([*plugin_files(raw, base), *(Path(p) for p in plugin_paths)])


def recorded_experiment(run_dir: RunDir, registry, sets=()) -> Experiment:
    """The experiment a run directory records, with ``--set`` overrides."""
    return experiment_of(run_dir, *recorded_raw(run_dir, sets), registry)


def experiment_of(run_dir: RunDir, raw: dict, origins: dict, registry) -> Experiment:
    """Validate tables read by :func:`recorded_raw`; files resolve beside the original file."""
    exp = build_experiment(raw, registry, source=run_dir.path / CONFIG, origins=origins)
    original = original_source(run_dir)
    return replace(exp, source=original) if original else exp


def load_trained(run_dir: RunDir, model: Model) -> None:
    """Put the run's saved parameters into ``model``, checking they fit its shapes."""
    if not (run_dir.path / PARAMS).exists():
        raise RnnlabError(f"{run_dir.path}: no {PARAMS} (the run saved no parameters)")
    saved = run_dir.load_params()
    if {k: v.shape for k, v in saved.items()} != {k: v.shape for k, v in model.params.items()}:
        raise RnnlabError(
            f"{run_dir.path / PARAMS}: its parameters do not fit the model of {CONFIG}"
        )
    for name, value in saved.items():
        model.params[name][...] = value
