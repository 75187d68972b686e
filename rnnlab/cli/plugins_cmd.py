"""`rnnlab plugins`: what is installed, where it comes from, and whether it loaded."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from ..display.terminal import plugins_table
from ..registry.manager import Registry
from .common import debug_option, out_console, plugin_option


def plugins_json(registry: Registry) -> list[dict]:
    """One dict per plugin: the PluginInfo fields, plus why each of its backends is unavailable
    (null when it is available)."""
    out = []
    for info in registry.plugins.values():
        unavailable = {}
        for name in info.backends:
            spec = registry.backends.get(name)
            unavailable[name] = spec.unavailable() if spec is not None else "claimed by two plugins"
        out.append({**asdict(info), "unavailable": unavailable})
    return out


@click.command("plugins")
@plugin_option
@click.option("--json", "as_json", is_flag=True, help="Print the plugins as JSON.")
@debug_option
def plugins(plugin_paths, as_json):
    """List plugins: version, source, status, the tasks and backends each provides, and the
    hooks each implements."""
    registry = Registry(plugin_paths)
    if as_json:
        click.echo(json.dumps(plugins_json(registry), indent=2))
    else:
        out_console().print(plugins_table(registry))
