"""Task plugin `chargen`: a character-level language model, bits per character, and text
generation."""

from rnnlab.hookspecs import hookimpl
from rnnlab.specs import TaskSpec

from .task import OPTIONS, CharTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [TaskSpec("chargen", CharTask, OPTIONS,
                     "character-level language model: bits per character, text generation")]
