"""The test suite's shared set-up: the tiny-experiment fixture, markers by path, hypothesis
profiles, and how the suite spreads over pytest-xdist workers.

Core tests live in tests/<area>/ (the areas of rnnlab/); each built-in plugin's tests live beside
it in plugins/<plugin>/tests/; helpers shared by both are the package tests.support.
"""

import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.tiny_runs import SMALL_SINE

# -- hypothesis: the full profile by default (CI); ``--hypothesis-profile=dev`` for the inner loop
settings.register_profile("ci", settings.default)
settings.register_profile("dev", max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def small_sine(tmp_path) -> Path:
    """A small sine experiment file (a run takes a fraction of a second)."""
    path = tmp_path / "small.toml"
    path.write_text(SMALL_SINE)
    return path


# -- markers by path ----------------------------------------------------------------------------
NUMBA_PATHS = ("plugins/rnnlab_numba/",)
TORCH_PATHS = ("tests/torch/",)


def is_numba(nodeid: str) -> bool:
    """A test that may compile numba kernels: the numba plugin's own tests, and any test whose
    id names the numba backend (parametrized ``[numba]``, ``..._numba``)."""
    return nodeid.startswith(NUMBA_PATHS) or "numba" in nodeid


def pytest_collection_modifyitems(config, items):
    for item in items:
        if is_numba(item.nodeid):
            item.add_marker(pytest.mark.numba)
        if item.nodeid.startswith(TORCH_PATHS):
            item.add_marker(pytest.mark.torch)
    # ``exhaustive`` tests run only when ``-m`` asks for them (``pytest -m exhaustive``, or an
    # expression naming them): each compiles a numba signature of its own (up to a minute)
    if "exhaustive" not in (config.option.markexpr or ""):
        dropped = [item for item in items if item.get_closest_marker("exhaustive")]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if not item.get_closest_marker("exhaustive")]


# -- workers (pytest-xdist) -----------------------------------------------------------------------
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's addopts): two workers for the whole suite, one process (no
    workers) when the command names files or folders: ``pytest -x tests/nn/test_optim.py`` runs
    at once, in one process, as a debugger wants. ``-n 2`` or ``-n 0`` choose explicitly."""
    given = config.invocation_params.args  # an option's value (-m "not slow") names no path
    named = [a for a in given if not a.startswith("-") and Path(a.split("::")[0]).exists()]
    return 0 if named else min(2, os.cpu_count() or 1)


# the cells, longest name first (``mingru`` before ``gru``)
CELL_NAMES = ("minlstm", "mingru", "indrnn", "lstm", "gru", "lru", "rnn")
CELL_IN_ID = re.compile(rf"(?<![a-z])({'|'.join(CELL_NAMES)})(?![a-z])")


def work_unit(nodeid: str) -> str:
    """A test's unit of work: a numba test whose name or parameters name a cell goes with the
    other numba tests of that cell (``numba rnn``, ...), any other test with its file."""
    path, _, rest = nodeid.partition("::")
    if is_numba(nodeid):
        cell = CELL_IN_ID.search(rest)
        if cell:
            return f"numba {cell.group(1)}"
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Units of work (``work_unit``), each run whole by one worker; a worker takes the next unit
    when it runs low: the numba units first (the largest first), then the others.

    Why: a cold suite spends about half its time compiling numba signatures (tens of seconds
    each, on one core), the rest in subprocesses, end-to-end runs and NumPy. numba compiles a
    signature per cell and dtype (and dropout, two directions, threads), so the numba tests of
    one cell go together: one worker compiles that cell's kernels, while the other compiles
    another cell's or runs the rest. Both write one on-disk cache (jitcache.py locks its
    writes), so a kernel one worker compiled is loaded, not compiled, by the other. (xdist's
    own ``--dist loadgroup`` would do this with markers, but xdist 3.8 cannot rename pytest
    9.2's node ids, so its groups are ignored.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def _assign_work_unit(self, node) -> None:
            # the heaviest waiting unit next: compiling first, the many short files fill the end
            def weight(unit: str) -> tuple[bool, int]:
                tests = self.workqueue[unit]
                return any(map(is_numba, tests)), len(tests)

            self.workqueue.move_to_end(max(self.workqueue, key=weight), last=False)
            super()._assign_work_unit(node)

    return ByUnit(config, log)
