"""The executors rnnlab ships, registered through the same hook a plugin's executor uses."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .base import ExecutorOptions, ExecutorSpec


def _serial(options: ExecutorOptions):
    from .serial import SerialExecutor

    return SerialExecutor()


def _local(options: ExecutorOptions):
    from .local import LocalExecutor

    return LocalExecutor(options.workers, options.retries)


def _dask(options: ExecutorOptions):
    from .dask_cluster import DaskExecutor

    return DaskExecutor(options.address or "local", options.workers, options.retries)


@hookimpl
def register_executors():
    return [
        ExecutorSpec("serial", _serial, "one run after another in this process"),
        ExecutorSpec("local", _local, "local worker processes, one run per core (default)"),
        ExecutorSpec("dask", _dask, "a Dask distributed cluster (needs rnnlab[dask])"),
    ]
