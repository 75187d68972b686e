"""Task plugin `chargen`: a character-level language model, bits per character, and text
generation."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, CharTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "chargen",
            CharTask,
            OPTIONS,
            "character-level language model: bits per character, text generation",
        )
    ]
