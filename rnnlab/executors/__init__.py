"""Engines that run the runs of a sweep: serial, local processes, Dask; more from plugins."""

from __future__ import annotations

from .. import __version__
from . import builtin
from .base import (
    DEFAULT_RETRIES,
    THREAD_ENV,
    Executor,
    ExecutorOptions,
    ExecutorSpec,
    RunJob,
    RunResult,
)

BUILTIN_PLUGIN = "rnnlab.executors"


def register_builtin(registry) -> None:
    """Add the built-in executors to a registry (once), like a plugin's."""
    if BUILTIN_PLUGIN not in registry.plugins:
        registry.add_module(builtin, BUILTIN_PLUGIN, source="built-in", version=__version__)


def make_executor(registry, name: str, options: ExecutorOptions) -> Executor:
    """The executor called ``name`` (built-in or from a plugin), built with ``options``."""
    register_builtin(registry)
    return registry.executor(name).factory(options)  # unknown or claimed twice: PluginError


__all__ = [
    "DEFAULT_RETRIES",
    "THREAD_ENV",
    "Executor",
    "ExecutorOptions",
    "ExecutorSpec",
    "RunJob",
    "RunResult",
    "make_executor",
    "register_builtin",
]
