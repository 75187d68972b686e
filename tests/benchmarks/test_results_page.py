"""Results tables go into the docs through the command that measured them: the block between
two marker lines is replaced whole, with a box saying how the figures were measured; the
busy-core comparison of NumPy's BLAS threads runs end to end (timing never asserted)."""

import re
import sys

import pytest

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import backends  # noqa: E402
import bars  # noqa: E402
import blas_threads  # noqa: E402
import compile_times  # noqa: E402
import diagnostics_overhead  # noqa: E402
import machine  # noqa: E402
import results_page  # noqa: E402
import sweep_parallel  # noqa: E402

PAGE = """# Speed

Some words.

<!-- generated: bars -->
old figures
<!-- end generated: bars -->

More words.
"""


def info(load=(0.2, 0.3, 0.4)) -> dict:
    out = results_page.record(machine.finish(machine.describe(with_torch=False)))
    out["load_average_start"] = list(load)
    out["command"] = "bars.py --repeats 3 --write-docs"
    return out


def test_a_block_is_replaced_whole_and_says_how_it_was_measured(tmp_path):
    page = tmp_path / "speed.md"
    page.write_text(PAGE)
    results_page.write_block("bars", "| a | b |\n|---|---|\n| 1 | 2 |", info(), page)
    text = page.read_text()
    assert "old figures" not in text
    assert text.startswith("# Speed\n\nSome words.\n\n<!-- generated: bars -->\n| a | b |")
    assert text.endswith("<!-- end generated: bars -->\n\nMore words.\n")
    box = text[text.index("!!! info") : text.index("<!-- end")]
    assert "`python benchmarks/bars.py --repeats 3 --write-docs`" in box
    for what in ("**Date:**", "logical cores", "OPENBLAS_CORETYPE", "NumPy", "numba", "Python"):
        assert what in box
    assert "0.2, 0.3, 0.4 at the start" in box and "not idle" not in box
    results_page.write_block("bars", "new", info(load=(5.0, 4.0, 3.0)), page)
    text = page.read_text()
    assert text.count("<!-- generated: bars -->") == 1 and "| 1 | 2 |" not in text
    assert "not idle: these figures were measured under load" in text


def test_a_page_without_the_block_is_left_alone(tmp_path):
    page = tmp_path / "speed.md"
    page.write_text(PAGE)
    with pytest.raises(results_page.NoBlock, match="<!-- generated: threads -->"):
        results_page.write_block("threads", "x", info(), page)
    assert page.read_text() == PAGE


BLOCKS = (
    "bars",
    "threads",
    "blas_threads",
    "blas_busy",
    "compile",
    "lengths",
    "bidirectional",
    "diagnostics",
    "sweeps",
)


def test_the_speed_page_has_the_blocks_the_scripts_write():
    text = results_page.PAGE.read_text()
    for name in BLOCKS:
        results_page.replace_block(text, name, "")  # raises without the block


def test_every_block_of_the_speed_page_was_written_by_its_command():
    """Each block ends with the box a command writes: the command, the versions it ran with
    and the load; no block holds figures copied by hand."""
    text = results_page.PAGE.read_text()
    names = re.findall(r"<!-- generated: (\w+) -->", text)
    assert sorted(names) == sorted(BLOCKS)
    for name in names:
        block = text.split(f"<!-- generated: {name} -->")[1].split("<!-- end generated")[0]
        assert '!!! info "How this table was measured"' in block, name
        for what in ("**Command:** `python benchmarks/", "**Versions:** Python ", "NumPy "):
            assert what in block, (name, what)
        assert "**Load average (1, 5, 15 min):** " in block, name
        assert "not recorded" not in block, name


def test_a_wrapped_command_writes_its_output(tmp_path, capsys):
    page = tmp_path / "speed.md"
    page.write_text(PAGE.replace("bars", "machine"))
    results_page.main(["machine", "--page", str(page), "--", sys.executable, "-c", "print(42)"])
    text = page.read_text()
    assert "```text\n42\n```" in text
    assert "results_page.py machine -- python -c print(42)" in text
    assert results_page.as_markdown("x\n| a |\n|---|\nrepeat 1/2 done\n") == "x\n\n| a |\n|---|\n"


def test_bars_write_their_tables(tmp_path):
    result = {
        "numba": "numba",
        "repeats": 3,
        "machine": info(),
        "bars": [
            {
                "label": "rnn",
                "against": "torch-1t",
                "bar": 10,
                "pass": True,
                "ratio": {"median": 12.0, "min": 11.0, "max": 13.0},
            },
            {
                "label": "lru",
                "against": "torch",
                "bar": 3,
                "pass": None,
                "reason": "numba does not run lru",
            },
        ],
        "details": [],
        "char_modules": [],
    }
    page = tmp_path / "speed.md"
    page.write_text(PAGE)
    bars.write_docs(result, page)
    text = page.read_text()
    assert "| rnn | torch-1t | 12.00x (11.00-13.00) | >= 10x | PASS |" in text
    assert "| lru | torch | - | >= 3x | numba does not run lru |" in text
    assert "**Repeats:** 3" in text


def test_busy_core_comparison_runs(monkeypatch):
    """Three settings in their own processes beside a busy loop, one repeat of a tiny case;
    the pinned process has one BLAS thread, the default one OpenBLAS's own count."""
    out = blas_threads.measure_busy((24, 4, 8), 1, lambda m: None)
    assert set(out["seconds"]) == {"rnnlab", "pinned", "default"}
    assert out["threads"]["pinned"] == 1 and out["threads"]["rnnlab"] == 1
    assert out["threads"]["default"] >= 1
    assert set(out["vs_pinned"]) == {"rnnlab", "default"} and out["pass"] in (True, False)


def test_the_diagnostics_cost_is_measured_and_written(capsys):
    """One repeat of the sine experiment on numpy: a row with the three parts and their
    shares."""
    case = diagnostics_overhead.Case("experiments/sine.toml", "numpy")
    diagnostics_overhead.measure([case], 1, lambda m: None)
    assert all(len(case.times[part]) == 1 for part in diagnostics_overhead.PARTS)
    md = backends.markdown(diagnostics_overhead.table([case], 1))
    assert "| sine.toml (rnn, H=32) on numpy |" in md and "health_every = 2" in md


def test_the_sweep_table_shows_each_repeat_and_the_median():
    repeats = [
        {"serial": 10.0, "serial_cpu": 9.0, "parallel": 6.0, "parallel_cpu": 11.0, "load": 4.0},
        {"serial": 10.0, "serial_cpu": 9.0, "parallel": 7.0, "parallel_cpu": 11.0, "load": 5.0},
    ]
    md = backends.markdown(sweep_parallel.table(repeats, 2))
    assert "| 1 | 10.00 (CPU 9.00) | 6.00 (CPU 11.00) | 0.600 | 4.0 |" in md
    assert "| median |  |  | 0.650 |  |" in md


def test_compile_figures_say_whether_the_cached_kernels_gave_the_same_bytes():
    def child(sha: str) -> dict:
        return {
            "imports_s": 1.0,
            "build_s": 20.0,
            "path": "epoch runner",
            "first_epoch_s": 0.01,
            "second_epoch_s": 0.01,
            "process_s": 22.0,
            "params_sha256": sha,
        }

    run = {"to_first_epoch_s": 1.0, "first_epoch_done_s": 1.2, "warmup_seconds": 0.5}
    run |= {"process_s": 2.0, "cpu_s": 1.5, "exit_s": 0.1, "load": [4.0, 5.0]}
    result = {
        "cells": [
            {"cell": "rnn", "dtype": "float64", "cold": child("a"), "warm": child("a")},
            {"cell": "lstm", "dtype": "float64", "cold": child("a"), "warm": child("b")},
        ],
        "run": {
            "command": "rnnlab run x",
            "cold": run,
            "warm": run,
            "bar": "warm < 1.5 s",
            "pass": True,
            "cold_bar": "cold <= 15 s",
            "cold_pass": True,
        },
    }
    text = compile_times.docs_figures(result)
    rows = [
        line for line in text.splitlines() if line.startswith("| rnn") or line.startswith("| lstm")
    ]
    assert rows[0].endswith("| yes |") and rows[1].endswith("| NO |")
    assert "- rnnlab run x, cold cache: first epoch starts 1.00 s" in text
    assert "- bar: warm < 1.5 s: PASS" in text
