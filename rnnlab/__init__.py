"""rnnlab: a plugin-based experiment framework for recurrent neural networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnnlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
