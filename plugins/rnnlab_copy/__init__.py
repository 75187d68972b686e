"""Task plugin `copy`: copy memory, recall 10 symbols after a long stretch of blanks."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, CopyTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "copy",
            CopyTask,
            OPTIONS,
            "copy memory: recall symbols seen T steps earlier (long-range memory)",
        )
    ]
