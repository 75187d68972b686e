"""A safetensors file written by `rnnlab export --format safetensors`, loaded back as a
:class:`rnnlab.Run`: ``rnnlab.load("model.safetensors").model.predict(x)``.

The file carries the run's resolved experiment (config.toml), its loss and its target in its
metadata; it has no history, metrics or checkpoint (those stay in the run directory).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..api import Run, warn_plugin
from ..errors import RnnlabError
from ..experiment.config import apply_overrides, build_experiment, plugin_files
from ..experiment.load import Warn, items
from ..registry.manager import Registry
from . import read_safetensors


class WeightsRun(Run):
    """A run as a safetensors file holds it: config, loss, target and parameters."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        backend: str | None = None,
        plugins: Iterable[str | os.PathLike[str]] = (),
        warn: Warn = warn_plugin,
    ):
        self._path = Path(path)
        if not self._path.is_file():
            raise RnnlabError(f"{self._path}: no such file")
        self._params, self._config, self._summary = read_safetensors(self._path)
        self._backend, self._plugins, self._warn = backend, tuple(items(plugins)), warn

    @property
    def dir(self) -> Path:
        """The safetensors file (a run loaded from one has no directory)."""
        return self._path

    @cached_property
    def config(self) -> dict[str, Any]:
        return self._config

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self._summary

    @cached_property
    def history(self) -> list[dict[str, Any]]:
        return []

    @cached_property
    def params(self) -> dict[str, np.ndarray]:
        return self._params

    @cached_property
    def _recorded(self):
        import copy

        raw = copy.deepcopy(self._config)
        sets = [f"train.backend={self._backend}"] if self._backend else []
        origins = apply_overrides(raw, sets)
        files = [*plugin_files(raw, self._path), *(Path(p) for p in self._plugins)]
        registry = Registry(files)
        for info in registry.failures():
            self._warn(info)
        return build_experiment(raw, registry, source=self._path, origins=origins), registry

    def resume(self, **_) -> Run:
        raise RnnlabError(
            f"{self._path}: a safetensors file holds no checkpoint; resume the "
            f"run directory it was exported from"
        )
