"""Results tables go into the docs through the command that measured them: the block between
two marker lines is replaced whole, with a box saying how the figures were measured; the
busy-core comparison of NumPy's BLAS threads runs end to end (timing never asserted)."""

import sys

import pytest

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import bars  # noqa: E402
import blas_threads  # noqa: E402
import machine  # noqa: E402
import results_page  # noqa: E402

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


def test_the_speed_page_has_the_blocks_the_scripts_write():
    text = results_page.PAGE.read_text()
    for name in ("bars", "blas_threads", "blas_busy"):
        results_page.replace_block(text, name, "")  # raises without the block


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
