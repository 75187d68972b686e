"""`rnnlab warm-up`: every installed backend with a warm-up of its own gets ready for the chosen
cells, dtypes, losses and targets, says what it compiles, and lists it with its time."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from rnnlab.cli import main

FAKE = """
from rnnlab.plugin import Backend, BackendSpec, hookimpl, preparing

CALLS = []


class Compiling(Backend):
    name = "compiling"
    cells = ("rnn", "gru")
    dtypes = ("float64",)

    def warm_up(self, plan):
        CALLS.append((plan.model.cell, plan.model.dtype, plan.loss, plan.target))
        if len(CALLS) == 1:  # the first plan compiles, the others find it compiled
            with preparing(f"compiling the {plan.model.cell} kernels", "once per machine"):
                pass


@hookimpl
def register_backends():
    return [BackendSpec("compiling", Compiling, "a backend that compiles")]
"""


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "compiling_backend.py"
    path.write_text(FAKE)
    return str(path)


def invoke(*args):
    # wide enough that no table cell wraps, whatever the terminal CI runs in
    return CliRunner(env={"COLUMNS": "200"}).invoke(
        main, ["warm-up", *args], catch_exceptions=False
    )


def test_each_combination_the_backend_runs_is_prepared_and_listed(plugin):
    result = invoke(
        "--plugin", plugin, "--backend", "compiling", "--cells", "rnn,lstm,gru",
        "--dtype", "float64,float32", "--loss", "mse", "--target", "last,every", "--threads", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "backend 'compiling': compiling the rnn kernels (once per machine) ..." in out
    assert "backend 'compiling': done compiling the rnn kernels in " in out
    # rnn and gru (not lstm: the backend does not run it), float64 only, two targets
    assert out.count("│ compiling │") == 4
    assert re.search(r"compiling the rnn kernels \(\d+\.\d s\)", out)
    assert out.count("│ nothing ") == 3
    assert "4 combinations ready in " in out


def test_a_backend_without_a_warm_up_is_left_alone():
    result = invoke("--backend", "numpy", "--cells", "rnn")
    assert result.exit_code == 0, result.output
    assert "no installed backend has anything to compile" in result.output


@pytest.mark.parametrize(
    "args, named",
    [
        (["--cells", "rnn,elman"], "elman is not one of"),
        (["--dtype", "float16"], "float16 is not one of float64, float32"),
        (["--loss", "hinge"], "hinge is not one of mse, xent"),
        (["--threads", "0"], "--threads '0'"),
        (["--threads", "two"], "--threads 'two'"),
    ],
)
def test_a_wrong_choice_is_one_message_naming_what_is_valid(args, named):
    result = CliRunner().invoke(main, ["warm-up", *args])
    assert result.exit_code == 2
    assert named in result.output
    assert "Traceback" not in result.output


def test_numba_compiles_or_loads_a_cheap_case():
    """The numba backend through the command: a float64 rnn plan on one thread (the test
    suite's other numba tests compile the same kernels, so this is usually a cache load)."""
    pytest.importorskip("numba")
    result = invoke(
        "--backend", "numba", "--cells", "rnn", "--loss", "mse", "--target", "last",
        "--threads", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines()]
    assert [r[:6] for r in rows if r and r[0] == "numba"] == [
        ["numba", "rnn", "float64", "mse", "last", "1"]
    ]
    assert "1 combination ready in " in result.output
