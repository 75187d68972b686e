"""Tiny sine experiments and helpers shared by the reliability tests (checkpoints, resume,
signals, bad input). Small enough that a whole run takes a fraction of a second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnlab.cli.common import load_experiment

TINY = """\
[experiment]
name = "tiny"
seed = 3

[task]
name = "sine"
points = 200
window = 5
forecast_steps = 5

[model]
hidden_size = 8

[train]
epochs = 4
batch_size = 16
learning_rate = 0.02
"""
BATCHES_PER_EPOCH = 10  # 155 training windows in batches of 16

SMALL_SINE = """\
[experiment]
name = "small"
seed = 3

[task]
name = "sine"
points = 200
stop = 20.0
window = 5

[model]
hidden_size = 8

[train]
epochs = 3
batch_size = 16
"""


# The adding experiment files cut to a two-epoch run of a second or two: the settings the numba
# tests share, so that they compile one fused-epoch signature per cell between them.
SMALL_ADDING_SETS = (
    "train.epochs=2",
    "task.length=20",
    "task.train_size=200",
    "task.val_size=40",
    "task.test_size=40",
    "model.hidden_size=8",
    "model.dtype=float64",
)


def write_tiny(folder: Path, text: str = TINY) -> Path:
    path = Path(folder) / "tiny.toml"
    path.write_text(text)
    return path


def tiny_experiment(folder: Path, *sets: str, plugins=()):
    """``(experiment, registry)`` for the tiny experiment with ``--set`` overrides."""
    return load_experiment(str(write_tiny(folder)), list(sets), list(plugins))


def outcome(run_path: Path) -> tuple[dict, dict[str, np.ndarray], list[dict]]:
    """What must be identical between an interrupted-and-resumed run and an uninterrupted one:
    the final metrics (with epochs run and best epoch), the parameters, and the per-epoch
    records without their timings."""
    summary = json.loads((run_path / "summary.json").read_text())
    with np.load(run_path / "params.npz") as data:
        params = {k: data[k] for k in data.files}
    lines = (run_path / "metrics.jsonl").read_text().splitlines()
    history = [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]
    figures = {k: summary.get(k) for k in ("status", "metrics", "epochs_run", "best_epoch")}
    return figures, params, history


def assert_same_outcome(a: Path, b: Path) -> None:
    fa, pa, ha = outcome(a)
    fb, pb, hb = outcome(b)
    assert fa == fb
    assert ha == hb
    assert pa.keys() == pb.keys()
    for k in pa:
        assert pa[k].dtype == pb[k].dtype
        assert np.array_equal(pa[k], pb[k]), k  # bit for bit
