"""Task plugin `dyck`: balanced brackets of variable length, trained short and tested long."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, DyckTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "dyck",
            DyckTask,
            OPTIONS,
            "Dyck-k next-symbol sets or partner tags; accuracy per length band",
        )
    ]
