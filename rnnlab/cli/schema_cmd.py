"""`rnnlab schema`: the JSON Schema of the experiment file, for editors (docs/editor-schema.md)."""

from __future__ import annotations

import json

import click

from ..experiment.json_schema import experiment_schema
from ..registry.manager import Registry
from .common import debug_option, plugin_option, warn_failures


@click.command("schema")
@plugin_option
@click.option(
    "--json-indent",
    "indent",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    metavar="N",
    help="Spaces per level of the JSON (0: one line).",
)
@debug_option
def schema(plugin_paths, indent):
    """Print a JSON Schema of experiment files: the core tables, each installed plugin's tables
    and each task's options (`rnnlab schema > rnnlab.schema.json`, then point your editor at
    it)."""
    registry = Registry(plugin_paths)
    warn_failures(registry)
    click.echo(json.dumps(experiment_schema(registry), indent=indent or None))
