"""Shared helpers of the chargen tests: a validated experiment from a few task options."""

from pathlib import Path

from rnnlab.experiment.config import build_experiment
from rnnlab.registry.manager import Registry

SENTENCE = "hello world this is a test of the RNN model"


def experiment(folder: Path, task: dict, model=None, train=None):
    """An experiment whose file would live in ``folder``; returns ``(experiment, registry)``."""
    registry = Registry()
    raw = {
        "task": {"name": "chargen", **task},
        "model": {"hidden_size": 8, **(model or {})},
        "train": {"epochs": 1, "batch_size": 4, **(train or {})},
    }
    return build_experiment(raw, registry, source=folder / "exp.toml"), registry
