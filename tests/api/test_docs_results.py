"""docs/gen/results.py writes the results pages' tables: checked on made-up results, no training.

The Markdown it renders (the table, then how it was measured), the markers it writes between,
and that every table it knows has its one pair of markers in its page, filled in.
"""

from __future__ import annotations

import importlib

import pytest

from tests.support.paths import ROOT

GEN = ROOT / "docs" / "gen"
RESULTS = ROOT / "docs" / "results"
BANDS = ("1_20", "21_40", "41_60", "61_80", "81_100")


@pytest.fixture(scope="module")
def gen():
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(GEN))
        yield importlib.import_module("results"), importlib.import_module("results_tables")


def fake_run(seed: int, wall: float) -> dict:
    """A run's results as ``results.result_of`` keeps them, with every metric a table reads."""
    test = {
        "mse": 2.7e-4 * (seed + 1),
        "within_0.04": 0.98,
        "baseline_mse": 0.1689,
        "acc": 0.9 + seed / 100,
        "step_acc": 0.99,
        **{f"acc_len_{band}": 1 - seed / 50 for band in BANDS},
        "bits_per_char": 1.95,
        "unigram_bits_per_char": 4.19,
        **{f"{p}{k}": 11.3 + seed for p in ("", "naive_", "seasonal_naive_") for k in ("mae",)},
        **{f"{p}mase": 0.5 for p in ("", "naive_", "seasonal_naive_")},
        "accuracy": 0.97,
        "macro_f1": 0.96,
        "majority_accuracy": 0.084,
        "majority_macro_f1": 0.017,
    }
    return {
        "metrics": {"test": test},
        "wall_seconds": wall,
        "parameters": 1314,
        "backend": "numpy",
        "blas": {"library": "openblas 0.3.31", "threads": 1, "chosen": "automatic"},
        "versions": {"rnnlab": "0.1.0", "python": "3.11.7", "numpy": "2.4.6", "numba": "0.68.1"},
        "date": f"2026-12-0{7 + seed}",
        "load": [0.5, 1.25 + seed],
    }


def fake_results(table, results) -> dict:
    rows = [
        [fake_run(seed, 40 + 100 * seed) for seed in range(len(row.seeds))] for row in table.rows
    ]
    return {
        "environment": {k: None for k in results.ENVIRONMENT} | {"OPENBLAS_CORETYPE": "Haswell"},
        "cpu": "Some CPU",
        "cores": 2,
        "system": "Linux",
        "openblas_core": "Haswell",
        "rows": rows,
    }


def test_a_table_renders_with_how_it_was_measured(gen):
    results, _ = gen
    table = results.Table(
        name="demo",
        page="demo.md",
        header=("cell", "test MSE", "wall time"),
        rows=(
            results.Row(("rnn",), "experiments/adding_rnn.toml"),
            results.Row(("gru | x",), "experiments/adding_gru.toml", ("train.epochs=2",), (0, 1)),
        ),
        cells=lambda row, runs: [
            results.spread([r["metrics"]["test"]["mse"] for r in runs], 5),
            results.wall_range(runs),
        ],
        note="A note.",
    )
    text = results.render(table, fake_results(table, results))
    lines = text.splitlines()
    assert lines[:4] == [
        "| cell | test MSE | wall time |",
        "|---|---|---|",
        "| rnn | 0.00027 | 40 s |",
        "| gru \\| x | 0.00040 (0.00027-0.00054) | 40 s to 2 min 20 s |",
    ]
    info = text.split('!!! info "How this table was measured"\n', 1)[1].splitlines()
    assert [line.split(":**")[0] for line in info] == [
        f"    - **{k}" for k in ("Command", "Date", "Machine", "Threads", "Versions")
    ]
    command, date, machine, threads, versions = info
    assert "`python docs/gen/results.py demo --table demo`" in command
    assert "`rnnlab run experiments/adding_rnn.toml`" in command
    assert (
        "`rnnlab run experiments/adding_gru.toml --set train.epochs=2 --set experiment.seed=N`"
        in command
    )
    assert command.endswith("A note.")
    assert date.endswith("2026-12-07 to 2026-12-08")
    assert "Some CPU, 2 logical cores, Linux" in machine and "load average 0.5-2.25 " in machine
    assert "`OPENBLAS_CORETYPE=Haswell`" in threads and "`OPENBLAS_NUM_THREADS` unset" in threads
    assert (
        "Haswell core type" in threads
        and "BLAS threads in a run: numpy backend 1, automatic" in threads
    )
    assert versions.endswith(
        "rnnlab 0.1.0, Python 3.11.7, NumPy 2.4.6, numba 0.68.1, "
        "BLAS libraries loaded: openblas 0.3.31"
    )


def test_a_row_with_the_wrong_number_of_cells_is_refused(gen):
    results, _ = gen
    table = results.Table(
        "t", "t.md", ("a", "b"), (results.Row(("x",), "e.toml"),), lambda r, s: []
    )
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        results.render(table, fake_results(table, results))


@pytest.mark.parametrize(
    ("values", "text"),
    [([0.5], "0.500"), ([1.0, 1.0], "1.000"), ([0.9, 1.0, 0.8], "0.900 (0.800-1.000)")],
)
def test_spread_is_the_mean_with_the_range(gen, values, text):
    assert gen[0].spread(values) == text


@pytest.mark.parametrize(
    ("walls", "text"),
    [([42.4], "42 s"), ([5, 12], "5-12 s"), ([183], "3 min 3 s"), ([60, 240], "60 s to 4 min")],
)
def test_wall_times(gen, walls, text):
    assert gen[0].wall_range([{"wall_seconds": w} for w in walls]) == text


def test_only_what_lies_between_the_markers_is_replaced(gen):
    results, _ = gen
    begin, end = results.begin_marker("t"), results.end_marker("t")
    page = f"# Title\n\nprose\n\n{begin}\nold\ntable\n{end}\n\nmore prose\n"
    assert results.replace_block(page, "t", "new") == (
        f"# Title\n\nprose\n\n{begin}\nnew\n{end}\n\nmore prose\n"
    )
    with pytest.raises(ValueError, match="0 marker pairs"):
        results.replace_block(page, "other", "new")
    with pytest.raises(ValueError, match="2 marker pairs"):
        results.replace_block(page + page, "t", "new")


def test_every_table_renders_and_has_its_markers_in_its_page(gen):
    results, tables = gen
    names = [t.name for t in tables.TABLES]
    assert len(names) == len(set(names))
    for table in tables.TABLES:
        page = (RESULTS / table.page).read_text()
        block = results.render(table, fake_results(table, results))
        assert results.replace_block(page, table.name, block).count(block) == 1
        for row in table.rows:
            assert (ROOT / row.experiment).is_file(), row.experiment


def test_the_pages_hold_generated_tables_only(gen):
    """Every marker pair in the results pages belongs to a known table and holds a table with
    how it was measured, as the generator writes it."""
    results, tables = gen
    known = {t.name for t in tables.TABLES}
    for page in RESULTS.glob("*.md"):
        text = page.read_text()
        for name in results.MARKED.findall(text):
            assert name in known, f"{page.name}: markers of an unknown table {name!r}"
            block = text.split(results.begin_marker(name), 1)[1].split(results.end_marker(name))[0]
            assert block.lstrip().startswith("| "), f"{page.name}: {name} holds no table"
            assert '!!! info "How this table was measured"' in block, f"{page.name}: {name}"
