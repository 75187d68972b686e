"""`rnnlab export RUN --format onnx|safetensors --out FILE`: a run's trained model for other
tools (onnxruntime, PyTorch's ``load_state_dict``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..api import Run, WeightsRun
from ..export import FORMATS, export
from .common import debug_option, plugin_option, warn_failure


@click.command("export")
@click.argument("run_dir", type=click.Path())
@click.option(
    "--format",
    "format_",
    required=True,
    type=click.Choice(FORMATS),
    help="onnx: a graph of ONNX's RNN/LSTM/GRU operators (inputs x [T, N, I] and "
    "lengths [N]); safetensors: the parameters with PyTorch's names.",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The file to write.")
@plugin_option
@debug_option
def export_command(run_dir, format_, out, plugin_paths):
    """Write the model trained in RUN_DIR (or a .safetensors file it was exported to) to a file
    in another tool's format."""
    if Path(run_dir).suffix == ".safetensors" and Path(run_dir).is_file():
        run = WeightsRun(run_dir, plugins=plugin_paths, warn=warn_failure)
    else:
        run = Run(run_dir, plugins=plugin_paths, warn=warn_failure)
    path = export(run, format_, out)
    click.echo(f"wrote {path} ({format_}, {path.stat().st_size} bytes)")
