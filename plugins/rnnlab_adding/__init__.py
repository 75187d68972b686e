"""Task plugin `adding`: the adding problem, where plain RNNs fail and gated cells succeed."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, AddingTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "adding",
            AddingTask,
            OPTIONS,
            "sum the two marked values of a long sequence (long-range memory)",
        )
    ]
