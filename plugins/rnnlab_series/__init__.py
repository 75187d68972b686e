"""Task plugin `series`: forecast a CSV time series of one's own (multivariate, multi-step)."""

from rnnlab.plugin import TaskSpec, hookimpl

from .task import OPTIONS, SeriesTask

__version__ = "0.1.0"


@hookimpl
def register_tasks():
    return [
        TaskSpec(
            "series",
            SeriesTask,
            OPTIONS,
            "forecast a CSV time series, against naive and seasonal-naive baselines",
        )
    ]
