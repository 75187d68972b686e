"""Task plugin `sine`: predict the next value of a sine wave from a window of past values."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, SineTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [TaskSpec("sine", SineTask, OPTIONS, "next-value prediction on a sine wave")]
