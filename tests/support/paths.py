"""Where things are: the repository, its experiment files, this folder of test helpers."""

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parent.parent
EXPERIMENTS = ROOT / "experiments"
