"""Task plugin `selective_copy`: recall, in order, the tokens scattered among noise."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, SelectiveCopyTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "selective_copy",
            SelectiveCopyTask,
            OPTIONS,
            "selective copying: recall the tokens scattered among noise, in order",
        )
    ]
