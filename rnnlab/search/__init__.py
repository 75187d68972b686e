"""Searches: an Optuna study over any keys of an experiment, each trial ordinary run
directories, pruned epoch by epoch, in parallel on any executor, resumable."""

from .driver import SearchOutcome, run_search
from .plan import SearchPlan, build_search

__all__ = ["SearchOutcome", "SearchPlan", "build_search", "run_search"]
