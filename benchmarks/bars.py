"""Issue 16's bars, measured side by side in one run: each row's speed-up of numba over its
rivals, PASS or FAIL.

| row | numba against | bar |
|---|---|---|
| rnn T=10 H=32 B=32 (the article's) | torch, numpy | >= 10x, >= 3x |
| lstm T=10 H=32 B=32 | torch | >= 5x |
| gru T=10 H=32 B=32 | torch | >= 5x |
| rnn T=100 H=128 B=32 | torch | >= 3x |
| numba float32 vs float64, rnn T=100 H=128 B=32 | numba float64 | >= 1.5x |
| char model, min-char-rnn's settings | min-char-rnn, numpy | >= 10x, >= 3x |

The windowed rows are benchmarks/backends.py's cases and contenders (990 sine windows, Adam,
norm clipping; numpy and numba as the core runs them, ``train.threads`` automatic; PyTorch the
script a user would write, with 1 and 2 threads, the better median taken); the char row is
benchmarks/charmodel.py (rnnlab's stateful path against a min-char-rnn NumPy loop, the same
characters). Every contender runs one untimed epoch, then all rows and contenders run
interleaved, ``--repeats`` times. A ratio is the median of the per-repeat ratios (paired: the
same repeat), with its range; a row passes when the median meets the bar.

    python benchmarks/bars.py                  # every row, 5 repeats
    python benchmarks/bars.py --repeats 9 --json
    python benchmarks/bars.py --row char --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass

import backends
import charmodel
import machine
import numpy as np
from backends import WINDOWS, Case, RnnlabContender, sine_data
from rich.console import Console
from rich.table import Table

CHAR = "char"


@dataclass(frozen=True)
class Bar:
    row: str  # the name --row takes
    label: str
    group: Case | str  # whose contenders hold the two sides: a Case, or CHAR
    slower: str  # the rival contender ("torch": the better thread setting)
    bar: float  # numba must be at least this many times faster
    group_slow: Case | str | None = None  # the rival's group, when not ``group``


ARTICLE, LONG = Case(10, 32, 32), Case(100, 128, 32)
LONG32 = Case(100, 128, 32, dtype="float32")
BARS = (
    Bar("rnn10", "rnn T=10 H=32 B=32 (the article's)", ARTICLE, "torch", 10),
    Bar("rnn10", "rnn T=10 H=32 B=32 (the article's)", ARTICLE, "numpy", 3),
    Bar("lstm10", "lstm T=10 H=32 B=32", Case(10, 32, 32, "lstm"), "torch", 5),
    Bar("gru10", "gru T=10 H=32 B=32", Case(10, 32, 32, "gru"), "torch", 5),
    Bar("rnn100", "rnn T=100 H=128 B=32", LONG, "torch", 3),
    Bar("float32", "numba float32 vs float64, rnn T=100 H=128 B=32", LONG32, "numba", 1.5, LONG),
    Bar(CHAR, "char model, stateful, min-char-rnn's settings", CHAR, "min-char-rnn", 10),
    Bar(CHAR, "char model, stateful, min-char-rnn's settings", CHAR, "numpy", 3),
)
ROWS = tuple(dict.fromkeys(b.row for b in BARS))


def setups(bars, with_torch: bool, modules, numba: str = "numba") -> dict:
    """The contenders of every group the bars need: numpy, numba (and torch) per windowed case;
    numba alone at float32; numba, numpy and min-char-rnn on the char text. ``numba`` names the
    numba contender (``numba-1t``: one thread)."""
    out: dict = {}
    for b in bars:
        for group in (b.group, b.group_slow):
            if group is None or group in out:
                continue
            if group == CHAR:
                out[group] = charmodel.contenders([numba, "numpy"], modules)
            elif group.dtype == "float32":
                out[group] = [RnnlabContender(numba, group, sine_data(group.T, group.dtype))]
            else:
                out[group] = backends.contenders(group, ["numpy", numba], with_torch)
    return out


def units(group, seconds: list[float], contender) -> float:
    """Samples (windowed) or characters (char) per second at the median."""
    work = contender.chars if group == CHAR else WINDOWS
    return work / statistics.median(seconds)


def verdicts(bars, groups: dict, times: dict, numba: str = "numba") -> list[dict]:
    rows = []
    for b in bars:
        slow_group = b.group_slow or b.group
        seconds = {c.name: times[(slow_group, c.name)] for c in groups[slow_group]}
        slower = {"torch": backends.best_torch(seconds), "numba": numba}.get(b.slower, b.slower)
        if slower is None:
            rows.append(
                {"row": b.row, "label": b.label, "against": b.slower, "bar": b.bar, "pass": None}
            )
            continue
        r = backends.ratio(seconds[slower], times[(b.group, numba)])
        rows.append(
            {
                "row": b.row,
                "label": b.label,
                "against": slower if slow_group == b.group else f"{slower} float64",
                "bar": b.bar,
                "ratio": r,
                "pass": r["median"] >= b.bar,
            }
        )
    return rows


def details(groups: dict, times: dict) -> list[dict]:
    """Every contender's median seconds per epoch, its range and its speed."""
    out = []
    for group, contenders in groups.items():
        for c in contenders:
            s = times[(group, c.name)]
            out.append(
                {
                    "group": group if group == CHAR else group.label,
                    "contender": c.name,
                    "median_s": statistics.median(s),
                    "min_s": min(s),
                    "max_s": max(s),
                    "per_second": units(group, s, c),
                    "unit": "chars/s" if group == CHAR else "samples/s",
                    "warmup_s": c.warmup,
                    "path": c.path,
                    **({"chars": c.chars} if group == CHAR else {}),
                }
            )
    return out


def show(console: Console, result: dict, as_markdown: bool = False) -> None:
    t = Table(
        title=f"issue 16 bars: {result['numba']}'s speed-up, median (min-max) of per-repeat ratios"
    )
    for col in ("row", f"{result['numba']} vs", "ratio", "bar", "verdict"):
        t.add_column(col, justify="right" if col in ("ratio", "bar") else "left")
    for v in result["bars"]:
        verdict = {True: "PASS", False: "FAIL", None: "skipped"}[v["pass"]]
        ratio = backends.show_ratio(v["ratio"]) if "ratio" in v else "-"
        t.add_row(v["label"], v["against"], ratio, f">= {v['bar']:g}x", verdict)
    backends.emit(console, t, as_markdown)
    d = Table(title="per contender: ms per epoch, median (min-max), and speed at the median")
    for col in ("group", "contender", "ms per epoch", "speed", "path"):
        d.add_column(col, justify="right" if col in ("ms per epoch", "speed") else "left")
    for r in result["details"]:
        d.add_row(
            r["group"],
            r["contender"],
            f"{1e3 * r['median_s']:.1f} ({1e3 * r['min_s']:.1f}-{1e3 * r['max_s']:.1f})",
            f"{r['per_second']:,.0f} {r['unit']}",
            r["path"],
        )
    backends.emit(console, d, as_markdown)
    chars = next((r["chars"] for r in result["details"] if "chars" in r), None)
    if chars is not None:
        console.print(
            f"char model: {chars:,} train characters per epoch (stdlib modules "
            f"{', '.join(result['char_modules'])})",
            highlight=False,
        )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--row", action="append", choices=ROWS, help="only these rows (repeatable)")
    ap.add_argument(
        "--char-modules",
        default=",".join(charmodel.MODULES),
        help="the char corpus: Python standard-library modules, comma-separated",
    )
    ap.add_argument(
        "--numba",
        default="numba",
        choices=("numba", "numba-1t"),
        help="the numba contender: train.threads automatic (default) or 1",
    )
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch (its rows: skipped)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = ap.parse_args(argv)
    bars = [b for b in BARS if not args.row or b.row in args.row]
    modules = tuple(args.char_modules.split(","))
    console = backends.console_for(args.json)
    log = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    wants_torch = any(b.slower == "torch" for b in bars)
    with_torch = wants_torch and not args.no_torch and backends.torch_available()
    if wants_torch and not with_torch and not args.no_torch:
        log("torch is not installed: the rows against torch are skipped")
    info = machine.describe(with_torch)
    if machine.idle_warning(info):
        log(machine.idle_warning(info))
    numba = backends.usable_contenders([args.numba], log) or ["numba"]
    groups = setups(bars, with_torch, modules, numba[0])
    rng = np.random.default_rng(1)
    times = backends.interleave(
        groups, args.repeats, lambda g: None if g == CHAR else rng.permutation(WINDOWS), log
    )
    machine.finish(info)
    result = {
        "machine": info,
        "repeats": args.repeats,
        "numba": numba[0],
        "bars": verdicts(bars, groups, times, numba[0]),
        "details": details(groups, times),
        "char_modules": list(modules),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    show(console, result, args.markdown)
    backends.print_header(console, info)


if __name__ == "__main__":
    main()
