"""rnnlab: a plugin-based experiment framework for recurrent neural networks.

The Python API (docs/python-api.md) is the names in ``__all__``::

    import rnnlab
    run = rnnlab.run("experiments/sine.toml", set=["train.epochs=20"])
    model = rnnlab.load(run.dir).model

They are imported on first use, so ``import rnnlab`` (and ``rnnlab --help``) stays fast.
Plugin authors (tasks, backends, cells) import from :mod:`rnnlab.plugin` instead.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it (the one place the Python API is named)
_PUBLIC = {
    "run": "rnnlab.api",
    "load": "rnnlab.api",
    "Run": "rnnlab.api",
    "TrainedModel": "rnnlab.api",
    "Forward": "rnnlab.api",
    "RnnlabError": "rnnlab.errors",
    "ConfigError": "rnnlab.errors",
    "PluginError": "rnnlab.errors",
    "TrainingDiverged": "rnnlab.errors",
    "RunInterrupted": "rnnlab.errors",
}
__all__ = [*_PUBLIC, "__version__"]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on use
    from .api import Forward as Forward
    from .api import Run as Run
    from .api import TrainedModel as TrainedModel
    from .api import load as load
    from .api import run as run
    from .errors import ConfigError as ConfigError
    from .errors import PluginError as PluginError
    from .errors import RnnlabError as RnnlabError
    from .errors import RunInterrupted as RunInterrupted
    from .errors import TrainingDiverged as TrainingDiverged


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
    elif name == "__version__":  # importlib.metadata alone would triple the import time
        value = installed_version()
    else:
        raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rnnlab")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0+unknown"


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
