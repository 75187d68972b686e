"""Sweeps: many runs of one experiment file (a grid of variants times seeds), on any executor."""

from .directory import prepare_directory, run_state
from .driver import SweepOutcome, run_sweep
from .plan import SweepPlan, Variant, build_plan
from .worker import continue_interrupted, run_job

__all__ = [
    "SweepOutcome",
    "SweepPlan",
    "Variant",
    "build_plan",
    "continue_interrupted",
    "prepare_directory",
    "run_job",
    "run_state",
    "run_sweep",
]
