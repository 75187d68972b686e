"""The speed bars, measured side by side in one run: each row's speed-up of numba over its
rivals, PASS or FAIL (or why it could not be measured: "numba does not run lru").

| row | numba against | bar |
|---|---|---|
| rnn T=10 H=32 B=32 (the article's) | torch, numpy, jax | >= 10x, >= 3x, >= 3x |
| lstm T=10 H=32 B=32 | torch, jax | >= 5x, >= 3x |
| gru T=10 H=32 B=32 | torch, jax | >= 5x, >= 3x |
| rnn T=100 H=128 B=32 | torch, jax | >= 3x, >= 3x |
| numba float32 vs float64, rnn T=100 H=128 B=32 | numba float64 | >= 1.5x |
| char model, min-char-rnn's settings | min-char-rnn, numpy, jax | >= 10x, >= 3x, >= 2x |
| mingru, minlstm, lru T=100 H=128 B=32 | torch, jax, numba's gru | >= 3x, >= 2x, >= 1.5x |
| lstm, lru T=1000 H=64 B=32 (adding problem) | torch | >= 3x |

The windowed rows are benchmarks/backends.py's cases and contenders (990 sine windows, or 990
sequences of the adding problem, Adam, norm clipping; numpy and numba as the core runs them,
``train.threads`` automatic; PyTorch the script a user would write, with 1 and 2 threads, the
better median taken; JAX the script a JAX user would write, the minibatch step or the whole
epoch under jit, with XLA's default threads or one, the best of the four taken); the char row
is benchmarks/charmodel.py (rnnlab's stateful path against a min-char-rnn NumPy loop and JAX,
the same characters). Every contender runs one untimed epoch, then all rows and contenders run
interleaved, ``--repeats`` times. A ratio is the median of the per-repeat ratios (paired: the
same repeat), with its range; a row passes when the median meets the bar. A group holds only
the contenders its bars compare (numba and the rivals named).

    python benchmarks/bars.py                  # every row, 5 repeats
    python benchmarks/bars.py --repeats 9 --json
    python benchmarks/bars.py --row char --repeats 1
    python benchmarks/bars.py --markdown > results.md   # the tables and the header as Markdown
    python benchmarks/bars.py --repeats 3 --write-docs  # and into docs/results/speed.md
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
import results_page
from backends import WINDOWS, Case
from rich.console import Console
from rich.table import Table

CHAR = "char"


@dataclass(frozen=True)
class Bar:
    row: str  # the name --row takes
    label: str
    group: Case | str  # whose contenders hold the two sides: a Case, or CHAR
    slower: str  # the rival contender ("torch", "jax": the best setting)
    bar: float  # numba must be at least this many times faster
    group_slow: Case | str | None = None  # the rival's group, when not ``group``


ARTICLE, LONG = Case(10, 32, 32), Case(100, 128, 32)
LSTM10, GRU10 = Case(10, 32, 32, "lstm"), Case(10, 32, 32, "gru")
LONG32 = Case(100, 128, 32, dtype="float32")
GRU100 = Case(100, 128, 32, "gru")
CHAR_LABEL = "char model, stateful, min-char-rnn's settings"
BARS = (
    Bar("rnn10", "rnn T=10 H=32 B=32 (the article's)", ARTICLE, "torch", 10),
    Bar("rnn10", "rnn T=10 H=32 B=32 (the article's)", ARTICLE, "numpy", 3),
    Bar("rnn10", "rnn T=10 H=32 B=32 (the article's)", ARTICLE, "jax", 3),
    Bar("lstm10", "lstm T=10 H=32 B=32", LSTM10, "torch", 5),
    Bar("lstm10", "lstm T=10 H=32 B=32", LSTM10, "jax", 3),
    Bar("gru10", "gru T=10 H=32 B=32", GRU10, "torch", 5),
    Bar("gru10", "gru T=10 H=32 B=32", GRU10, "jax", 3),
    Bar("rnn100", "rnn T=100 H=128 B=32", LONG, "torch", 3),
    Bar("rnn100", "rnn T=100 H=128 B=32", LONG, "jax", 3),
    Bar("float32", "numba float32 vs float64, rnn T=100 H=128 B=32", LONG32, "numba", 1.5, LONG),
    Bar(CHAR, CHAR_LABEL, CHAR, "min-char-rnn", 10),
    Bar(CHAR, CHAR_LABEL, CHAR, "numpy", 3),
    Bar(CHAR, CHAR_LABEL, CHAR, "jax", 2),
)
for _cell in ("mingru", "minlstm", "lru"):  # linear in h: far faster than a GRU of the same size
    _case, _label = Case(100, 128, 32, _cell), f"{_cell} T=100 H=128 B=32"
    BARS += (
        Bar(f"{_cell}100", _label, _case, "torch", 3),
        Bar(f"{_cell}100", _label, _case, "jax", 2),
        Bar(f"{_cell}100", f"{_label} vs gru", _case, "numba", 1.5, GRU100),
    )
for _cell in ("lstm", "lru"):  # long sequences
    _case = Case(1000, 64, 32, _cell, data="adding")
    BARS += (Bar(f"{_cell}1000", f"{_cell} T=1000 H=64 B=32 (adding)", _case, "torch", 3),)
ROWS = tuple(dict.fromkeys(b.row for b in BARS))


def rivals(bars) -> dict:
    """Per group, the rivals its bars name (a group only on a bar's slow side: numba alone)."""
    out: dict = {}
    for b in bars:
        out.setdefault(b.group, set())
        slow = b.group_slow or b.group
        out.setdefault(slow, set())
        if b.slower != "numba":
            out[slow].add(b.slower)
    return out


def setups(
    bars,
    with_torch: bool,
    modules,
    numba: str = "numba",
    jax_pool=None,
    unavailable: dict | None = None,
) -> dict:
    """The contenders of every group the bars need: numba and the rivals its bars name (numpy,
    torch, jax; min-char-rnn on the char text). ``numba`` names the numba contender
    (``numba-1t``: one thread). A contender that cannot run its group is left out, the reason
    in ``unavailable[group][name]``."""
    out: dict = {}
    unavailable = {} if unavailable is None else unavailable
    for group, wanted in rivals(bars).items():
        missing = unavailable.setdefault(group, {})
        pool = jax_pool if "jax" in wanted else None
        if group == CHAR:
            out[group] = charmodel.contenders([numba, "numpy"], modules)
            if pool is not None:
                out[group] += pool.contenders(charmodel.jax_problem(out[group][0]))
            continue
        names = [n for n in ("numpy",) if n in wanted] + [numba]
        out[group] = backends.contenders(
            group, names, with_torch and "torch" in wanted, pool, missing
        )
    return out


def units(group, seconds: list[float], chars: int | None) -> float:
    """Samples (windowed) or characters (char: ``chars`` per epoch) per second at the
    median."""
    work = chars if group == CHAR else WINDOWS
    return work / statistics.median(seconds)


def verdicts(
    bars, groups: dict, times: dict, numba: str = "numba", unavailable: dict | None = None
) -> list[dict]:
    rows = []
    unavailable = unavailable or {}
    for b in bars:
        slow_group = b.group_slow or b.group
        seconds = {c.name: times[(slow_group, c.name)] for c in groups[slow_group]}
        slower = {
            "torch": backends.best_torch(seconds),
            "jax": backends.best_jax(seconds),
            "numba": numba,
        }.get(b.slower, b.slower)
        reason = unavailable.get(b.group, {}).get(numba) or (
            unavailable.get(slow_group, {}).get(numba) if slower == numba else None
        )
        if slower is None or reason or slower not in seconds:
            rows.append(
                {
                    "row": b.row,
                    "label": b.label,
                    "against": b.slower,
                    "bar": b.bar,
                    "pass": None,
                    "reason": reason or f"{b.slower} not measured",
                }
            )
            continue
        r = backends.ratio(seconds[slower], times[(b.group, numba)])
        rows.append(
            {
                "row": b.row,
                "label": b.label,
                "against": slower if slow_group == b.group else f"{slower} on {slow_group.label}",
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
        chars = contenders[0].chars if group == CHAR else None  # the same text for all
        for c in contenders:
            s = times[(group, c.name)]
            out.append(
                {
                    "group": group if group == CHAR else group.label,
                    "contender": c.name,
                    "median_s": statistics.median(s),
                    "min_s": min(s),
                    "max_s": max(s),
                    "per_second": units(group, s, chars),
                    "unit": "chars/s" if group == CHAR else "samples/s",
                    "warmup_s": c.warmup,
                    "path": c.path,
                    **({"chars": chars} if group == CHAR else {}),
                }
            )
    return out


def tables(result: dict) -> tuple[Table, Table, str | None]:
    """The verdicts, every contender's figures, and a line about the char text (if any)."""
    t = Table(title=f"{result['numba']}'s speed-up, median (min-max) of per-repeat ratios")
    for col in ("row", f"{result['numba']} vs", "ratio", "bar", "verdict"):
        t.add_column(col, justify="right" if col in ("ratio", "bar") else "left")
    for v in result["bars"]:
        verdict = {True: "PASS", False: "FAIL", None: v.get("reason", "skipped")}[v["pass"]]
        ratio = backends.show_ratio(v["ratio"]) if "ratio" in v else "-"
        t.add_row(v["label"], v["against"], ratio, f">= {v['bar']:g}x", verdict)
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
    chars = next((r["chars"] for r in result["details"] if "chars" in r), None)
    line = None
    if chars is not None:
        line = (
            f"char model: {chars:,} train characters per epoch (stdlib modules "
            f"{', '.join(result['char_modules'])})"
        )
    return t, d, line


def show(console: Console, result: dict, as_markdown: bool = False) -> None:
    t, d, line = tables(result)
    backends.emit(console, t, as_markdown)
    backends.emit(console, d, as_markdown)
    if line:
        console.print(line, highlight=False)


def write_docs(result: dict, page=results_page.PAGE) -> str:
    """The tables into the block ``bars`` of the results page, with how they were measured."""
    t, d, line = tables(result)
    figures = "\n\n".join([backends.markdown(t), backends.markdown(d), *([line] if line else [])])
    notes = [f"**Repeats:** {result['repeats']}, interleaved; numba contender {result['numba']}"]
    return str(results_page.write_block("bars", figures, result["machine"], page, notes))


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
    ap.add_argument("--no-jax", action="store_true", help="skip JAX (its rows: skipped)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument(
        "--write-docs",
        action="store_true",
        help="also write the tables and how they were measured into docs/results/speed.md",
    )
    args = ap.parse_args(argv)
    bars = [b for b in BARS if not args.row or b.row in args.row]
    modules = tuple(args.char_modules.split(","))
    console = backends.console_for(args.json)
    log = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    wants_torch = any(b.slower == "torch" for b in bars)
    with_torch = wants_torch and not args.no_torch and backends.torch_available()
    if wants_torch and not with_torch and not args.no_torch:
        log("torch is not installed: the rows against torch are skipped")
    wants_jax = any(b.slower == "jax" for b in bars)
    with_jax = wants_jax and not args.no_jax and backends.jax_available()
    if wants_jax and not with_jax and not args.no_jax:
        log(
            "jax or optax is not installed (pip install rnnlab[jax]): the rows against jax are "
            "skipped"
        )
    numba = backends.usable_contenders([args.numba], log) or ["numba"]
    unavailable: dict = {}
    with backends.jax_pool_if(with_jax) as pool:
        info = results_page.record(machine.describe(with_torch, pool))
        if machine.idle_warning(info):
            log(machine.idle_warning(info))
        groups = setups(bars, with_torch, modules, numba[0], pool, unavailable)
        for group, reasons in unavailable.items():
            for reason in reasons.values():
                log(f"{group if group == CHAR else group.label}: {reason}")
        rng = np.random.default_rng(1)
        times = backends.interleave(
            groups, args.repeats, lambda g: None if g == CHAR else rng.permutation(WINDOWS), log
        )
        machine.finish(info)
    result = {
        "machine": info,
        "repeats": args.repeats,
        "numba": numba[0],
        "bars": verdicts(bars, groups, times, numba[0], unavailable),
        "details": details(groups, times),
        "char_modules": list(modules),
    }
    if args.write_docs:
        log(f"wrote the tables into {write_docs(result)}")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    show(console, result, args.markdown)
    backends.print_header(console, info)


if __name__ == "__main__":
    main()
