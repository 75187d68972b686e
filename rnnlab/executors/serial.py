"""Runs one after another in this process: the reference the parallel executors must match."""

from __future__ import annotations

from .base import Executor


class SerialExecutor(Executor):
    name = "serial"

    def run(self, fn, jobs, started):
        for job in jobs:
            started(job)
            yield fn(job)

    def describe(self) -> str:
        return "serial (this process)"
