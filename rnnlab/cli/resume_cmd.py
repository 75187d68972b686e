"""`rnnlab resume RUN_DIR`: continue an interrupted run from its checkpoint."""

from __future__ import annotations

import click

from .common import debug_option, plugin_option, set_option
from .run_cmd import json_option, report_run


@click.command("resume")
@click.argument("run_dir", type=click.Path(file_okay=False))
@set_option
@plugin_option
@json_option
@debug_option
def resume(run_dir, sets, plugin_paths, as_json):
    """Continue the interrupted run in RUN_DIR; it ends exactly as if never interrupted.

    Only train.epochs (with a constant learning rate), train.checkpoint_every,
    train.checkpoint_seconds and train.threads may be changed with --set; anything else would
    make it another experiment.
    """
    report_run(None, run_dir, sets, plugin_paths, None, as_json)
