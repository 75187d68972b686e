"""Task plugin `sequences`: classify labelled variable-length sequences, or regress a number."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, SequencesTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "sequences",
            SequencesTask,
            OPTIONS,
            "classify labelled variable-length sequences (or regress a number) from "
            "JSON Lines or CSV",
        )
    ]
