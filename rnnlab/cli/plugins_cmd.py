"""`rnnlab plugins`: what is installed, where it comes from, and whether it loaded."""

from __future__ import annotations

from rich.console import Console

from ..plugins import Registry
from ..report import plugins_table
from . import main
from .common import debug_option, plugin_option


@main.command("plugins")
@plugin_option
@debug_option
def plugins(plugin_paths):
    """List plugins: version, source, status, and the tasks and backends each provides."""
    registry = Registry(plugin_paths)
    Console().print(plugins_table(registry))
