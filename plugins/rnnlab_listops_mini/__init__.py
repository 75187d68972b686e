"""Task plugin `listops_mini`: evaluate nested list operations, LRA's ListOps scaled down."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, ListOpsTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "listops_mini",
            ListOpsTask,
            OPTIONS,
            "ListOps, small: the value (0-9) of a nested MIN/MAX/MED/SM expression",
        )
    ]
