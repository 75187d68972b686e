"""Task plugin `digits`: 8x8 handwritten digits read pixel by pixel (or row by row), in order or
in a fixed permutation."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, DigitsTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "digits",
            DigitsTask,
            OPTIONS,
            "sequential / permuted 8x8 digits: classify an image read one pixel at a time",
        )
    ]
