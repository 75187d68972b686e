"""Shared fixtures: the repository's paths and a small, quick sine experiment."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"

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


@pytest.fixture
def small_sine(tmp_path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_SINE)
    return path
