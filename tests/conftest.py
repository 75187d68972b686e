"""Shared fixtures: the repository's paths and a small, quick sine experiment."""

import ast
import functools
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


# -- two workers (pytest-xdist, ``-n 2`` in pyproject's addopts) ------------------------------
@functools.cache
def _numba_tests(path: Path) -> frozenset[str]:
    """The test functions of a file whose source names numba (they may compile its kernels)."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return frozenset()
    text = path.read_text()
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and "numba" in (ast.get_source_segment(text, node) or "")
    )


def work_unit(root: Path, nodeid: str) -> str:
    """``"numba"`` for a test that may compile numba kernels (its id or source names numba),
    else its file."""
    path, _, rest = nodeid.partition("::")
    name = rest.split("[")[0].rsplit("::", 1)[-1]
    if "numba" in nodeid or name in _numba_tests(root / path):
        return "numba"
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Every test that may compile numba kernels goes to one worker, as one unit of work (the
    largest, so it starts first); the other worker takes the rest file by file (a module's
    fixtures are built once), then helps with what is left.

    Why: a cold suite spends about half its time compiling numba signatures (seconds each, on
    one core), the rest in subprocesses, end-to-end runs and NumPy. Two workers that both
    compiled numba kernels would compile many signatures twice and write the same functions'
    on-disk cache indexes at once (numba's cache has no lock between processes); one numba
    worker compiles each signature once while the other core runs everything else. (xdist's own
    ``--dist loadgroup`` would do this with markers, but xdist 3.8 cannot rename pytest 9.2's
    node ids, so its groups are ignored.) ``pytest -n 0`` runs everything in one process."""
    from xdist.scheduler import LoadScopeScheduling

    class NumbaApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(config.rootpath, nodeid)

    return NumbaApart(config, log)
