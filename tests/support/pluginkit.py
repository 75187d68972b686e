"""Helpers shared by the plugin tests: a tiny experiment, and registries built in isolation."""

from __future__ import annotations

from pathlib import Path

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.registry.manager import Registry
from rnnlab.training.run import run_experiment

SMALL_SINE = """\
[experiment]
name = "small"
seed = 0
[task]
name = "sine"
points = 120
window = 5
[model]
hidden_size = 4
[train]
epochs = {epochs}
batch_size = 16
"""


def write_experiment(folder: Path, epochs: int = 3, text: str | None = None) -> Path:
    path = folder / "small.toml"
    path.write_text(text if text is not None else SMALL_SINE.format(epochs=epochs))
    return path


def registry_with(*plugins, files=(), **kwargs) -> Registry:
    """The installed plugins plus ``plugins`` (objects with @hookimpl methods), named p0, p1..."""
    registry = Registry(files, **kwargs)
    for i, plugin in enumerate(plugins):
        registry.add_module(plugin, f"p{i}", source="file", version="0")
    return registry


def run(path: Path, registry: Registry, out: Path):
    """Validate and run an experiment file with ``registry``; return ``(summary, run_dir)``."""
    exp = build_experiment(read_toml(path), registry, source=path)
    return run_experiment(exp, registry, out_root=out)
