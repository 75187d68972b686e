"""The tables of the results pages: which runs each one makes and how a row's runs fill its
columns. ``results.py`` runs them and writes the pages."""

from __future__ import annotations

from results import Row, Table, spread, wall_range

SEEDS = (0, 1, 2, 3, 4)


def test(runs: list[dict], key: str) -> list[float]:
    return [r["metrics"]["test"][key] for r in runs]


def mse(value: float) -> str:
    """Four decimals, or two significant digits below 0.01 (``2.7e-4``)."""
    if value >= 0.01:
        return f"{value:.4f}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


# -- the adding problem -------------------------------------------------------------------------


def adding_cells(row: Row, runs: list[dict]) -> list[str]:
    (r,) = runs
    m = r["metrics"]["test"]
    return [mse(m["mse"]), f"{m['within_0.04']:.3f}", mse(m["baseline_mse"]), wall_range(runs)]


ADDING = Table(
    name="adding-cells",
    page="adding.md",
    header=("cell", "test MSE", "test within 0.04", "baseline MSE", "wall time (NumPy backend)"),
    rows=(
        Row(("rnn (tanh)",), "experiments/adding_rnn.toml"),
        Row(("lstm (`forget_bias = 1`)",), "experiments/adding_lstm.toml"),
        Row(("gru",), "experiments/adding_gru.toml"),
    ),
    cells=adding_cells,
)

# -- balanced brackets --------------------------------------------------------------------------
BANDS = ("1-20", "21-40", "41-60", "61-80", "81-100")


def bands(runs: list[dict]) -> list[str]:
    """Strings right per length band, then over all test strings: mean (range) over seeds."""
    keys = [f"acc_len_{band.replace('-', '_')}" for band in BANDS]
    return [spread(test(runs, key)) for key in [*keys, "acc"]]


def dyck_bands(row: Row, runs: list[dict]) -> list[str]:
    return [*bands(runs), wall_range(runs)]


def dyck_tagger(row: Row, runs: list[dict]) -> list[str]:
    sizes = {r["parameters"] for r in runs}
    (parameters,) = sizes
    return [f"{parameters:,}", *bands(runs), spread(test(runs, "step_acc")), wall_range(runs)]


DYCK_HEADER = ("cell", "backend", *BANDS, "all test strings", "wall time per run")
NUMBA = ("train.backend=numba",)

DYCK_NEXT = Table(
    name="dyck-1",
    page="dyck.md",
    header=DYCK_HEADER,
    rows=(
        Row(("rnn (tanh)", "numpy"), "experiments/dyck_rnn.toml", seeds=SEEDS),
        Row(("rnn (tanh)", "numba"), "experiments/dyck_rnn.toml", NUMBA, SEEDS),
        Row(("lstm", "numpy"), "experiments/dyck_lstm.toml", seeds=SEEDS),
        Row(("lstm", "numba"), "experiments/dyck_lstm.toml", NUMBA, SEEDS),
        Row(("gru", "numpy"), "experiments/dyck_gru.toml", seeds=SEEDS),
        Row(("gru", "numba"), "experiments/dyck_gru.toml", NUMBA, SEEDS),
        Row(
            ("rnn (relu)", "numpy"),
            "experiments/dyck_rnn.toml",
            ("model.nonlinearity=relu",),
            SEEDS,
        ),
    ),
    cells=dyck_bands,
    note="Seeds N = 0-4: mean over the seeds, lowest and highest seed in brackets.",
)

DYCK_2 = Table(
    name="dyck-2",
    page="dyck.md",
    header=DYCK_HEADER,
    rows=tuple(
        Row((label, "numpy"), f"experiments/dyck_{cell}.toml", ("task.pairs=2",))
        for label, cell in (("rnn (tanh)", "rnn"), ("lstm", "lstm"), ("gru", "gru"))
    ),
    cells=dyck_bands,
    note="Seed 0.",
)

DYCK_TAGGER = Table(
    name="dyck-tagger",
    page="dyck.md",
    header=(
        "model",
        "parameters",
        *BANDS,
        "all test strings",
        "steps right",
        "wall time per run",
    ),
    rows=(
        Row(("lstm H=16 (`dyck_matched.toml`)",), "experiments/dyck_matched.toml", seeds=SEEDS),
        Row(
            ("bidirectional lstm H=11 (`dyck_matched_bidirectional.toml`)",),
            "experiments/dyck_matched_bidirectional.toml",
            seeds=SEEDS,
        ),
        Row(
            ("bidirectional lstm H=16 (`--set model.hidden_size=16`)",),
            "experiments/dyck_matched_bidirectional.toml",
            ("model.hidden_size=16",),
            SEEDS,
        ),
    ),
    cells=dyck_tagger,
    note="Seeds N = 0-4: mean over the seeds, lowest and highest seed in brackets.",
)

# -- your data ----------------------------------------------------------------------------------


def decimals(values: list[float]) -> int:
    return 2 if min(values) >= 1 else 3


def your_data(row: Row, runs: list[dict]) -> list[str]:
    m = runs[0]["metrics"]["test"]
    if "mae" in m:  # a forecast: MAE and MASE, against the naive and seasonal-naive ones
        digits = decimals(test(runs, "mae"))  # the model's, for its baselines too

        def pair(prefix: str) -> str:
            mae = test(runs, f"{prefix}mae")
            return f"MAE {spread(mae, digits)}, MASE {spread(test(runs, f'{prefix}mase'))}"

        result = pair("")
        baselines = f"naive {pair('naive_')}; seasonal naive {pair('seasonal_naive_')}"
    else:  # a classification: accuracy and macro-F1, against the majority class
        result = (
            f"accuracy {spread(test(runs, 'accuracy'))}, macro-F1 {spread(test(runs, 'macro_f1'))}"
        )
        baselines = (
            f"majority class: accuracy {spread(test(runs, 'majority_accuracy'))}, "
            f"macro-F1 {spread(test(runs, 'majority_macro_f1'))}"
        )
    return [result, baselines, wall_range(runs)]


YOUR_DATA = Table(
    name="your-data",
    page="your-data.md",
    header=("experiment", "data", "model", "test result", "baselines (test)", "wall time"),
    rows=(
        Row(
            (
                "`sunspots.toml`",
                "yearly sunspot numbers 1700-2008 (309 rows; public domain)",
                "GRU 32, window 24, next year",
            ),
            "experiments/sunspots.toml",
            seeds=(0, 1, 2),
        ),
        Row(
            (
                "`co2_weekly.toml`",
                "weekly CO2 at Mauna Loa 1958-2001 (2,284 weeks, 59 missing, interpolated; "
                "public domain)",
                "GRU 32, window 52, next 4 weeks, `relative`",
            ),
            "experiments/co2_weekly.toml",
            seeds=(0, 1, 2),
        ),
        Row(
            (
                "`japanese_vowels.toml`",
                "UCI Japanese Vowels: 640 utterances, 7-29 frames x 12 coefficients, "
                "9 speakers (CC BY 4.0)",
                "GRU 32, the file's split (270 train, 370 test)",
            ),
            "experiments/japanese_vowels.toml",
            seeds=(0, 1, 2),
        ),
    ),
    cells=your_data,
    note="Seeds N = 0-2: mean over the seeds, lowest and highest seed in brackets.",
)

# -- text generation ----------------------------------------------------------------------------


def chargen(row: Row, runs: list[dict]) -> list[str]:
    (r,) = runs
    m = r["metrics"]["test"]
    return [f"{m['bits_per_char']:.2f}", f"{m['unigram_bits_per_char']:.2f}", wall_range(runs)]


RNN_256 = ("model.cell=rnn", "model.forget_bias=0", "model.hidden_size=256")
CHARGEN = Table(
    name="chargen-corpus",
    page="chargen.md",
    header=("model", "backend", "test bits per character", "unigram baseline", "wall time"),
    rows=(
        Row(("lstm H=128 (`chargen_corpus.toml`)", "numba"), "experiments/chargen_corpus.toml"),
        Row(("rnn (tanh) H=256", "numba"), "experiments/chargen_corpus.toml", RNN_256),
        Row(
            ("rnn (tanh) H=256", "numpy"),
            "experiments/chargen_corpus.toml",
            (*RNN_256, "train.backend=numpy"),
        ),
    ),
    cells=chargen,
)

TABLES = (ADDING, DYCK_NEXT, DYCK_2, DYCK_TAGGER, YOUR_DATA, CHARGEN)
