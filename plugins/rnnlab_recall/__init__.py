"""Task plugin `recall`: multi-query associative recall (key-value pairs, then queries)."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, RecallTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "recall",
            RecallTask,
            OPTIONS,
            "multi-query associative recall: the value bound to each queried key",
        )
    ]
