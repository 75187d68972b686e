"""Where numba's second thread pays: one thread against two on the same epochs, by batch size.

numba's fused epoch splits a batch into chunks by the problem's size alone
(``rnnlab_numba.layout.chunk_rows``: one chunk per ``CHUNK_WORK`` multiply-adds of the batch's
recurrent products, so at least ``2 * CHUNK_WORK`` for two chunks), and with ``train.threads = 0``
runs the chunks on two threads when there are two and a core is free. This measures that rule on
sine windows (Adam, norm clipping, as benchmarks/backends.py), per case:

- ``1t``: one thread, the chunks the rule picks (what runs below the threshold);
- ``1t chunked`` and ``2t chunked``: the batch forced into chunks (``CHUNK_WORK`` set to 1 for
  these contenders only: at most ``MAX_CHUNKS`` chunks of a multiple of 4 rows), on one and on
  two threads.

``2t chunked`` against ``1t`` is what choosing two threads would gain at that size; against
``1t chunked`` the threads alone. Interleaved, every contender after the process's other
threads are idle, ratios the median of per-repeat ratios. A figure is worth quoting only from an
idle machine with two free cores (the header says the load).

    python benchmarks/threads.py                      # rnn T=10 H=32, B from 4 to 128
    python benchmarks/threads.py --case 10,32,32,lstm --case 10,64,32 --repeats 9
    python benchmarks/threads.py --repeats 7 --write-docs   # into docs/results/speed.md
"""

from __future__ import annotations

import argparse
import statistics

import backends
import machine
import numpy as np
import results_page
from backends import Case, RnnlabContender, parse_case, sine_data
from rich.table import Table

from rnnlab.cells import cell_spec
from rnnlab_numba import layout

DEFAULT_CASES = tuple(Case(10, 32, B) for B in (4, 8, 16, 32, 64, 128))
CONTENDERS = {"1t": (1, None), "1t chunked": (1, 1), "2t chunked": (2, 1)}  # threads, CHUNK_WORK


class Contender(RnnlabContender):
    """numba with ``threads`` forced and, when ``chunk_work`` is set, that ``CHUNK_WORK`` in
    force while the runner lays out its buffers (in its first epoch; kept afterwards)."""

    def __init__(self, label: str, case: Case, data, threads: int, chunk_work: int | None):
        saved = layout.CHUNK_WORK
        layout.CHUNK_WORK = chunk_work or saved
        try:
            super().__init__(f"numba-{threads}t", case, data)
            self.epoch(np.arange(backends.WINDOWS))
        finally:
            layout.CHUNK_WORK = saved
        self.name = label


def work(case: Case) -> int:
    gates = cell_spec(case.cell).gates
    return layout.batch_work(case.B, case.T, gates, case.H, 2 if case.bidirectional else 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", help="T,H,B[,cell] (repeatable)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    results_page.add_write_docs(ap, "threads")
    args = ap.parse_args(argv)
    cases = [parse_case(c) for c in args.case] if args.case else list(DEFAULT_CASES)
    console = backends.console_for(False)
    info = results_page.record(machine.describe(with_torch=False))
    if machine.idle_warning(info):
        console.print(machine.idle_warning(info))
    setups = {}
    for case in cases:
        data = sine_data(case.T, case.dtype)
        setups[case] = [Contender(n, case, data, *CONTENDERS[n]) for n in CONTENDERS]
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    rng = np.random.default_rng(1)
    orders = lambda case: rng.permutation(backends.WINDOWS)  # noqa: E731
    times = backends.interleave(setups, args.repeats, orders, log)
    machine.finish(info)
    table = Table(title="numba, one thread against two: ms per epoch (median), speed-ups")
    for col in ("case", "work", "1t", "1t ch", "2t ch", "2t ch / 1t", "2t ch / 1t ch"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for case in cases:
        t = {n: times[(case, n)] for n in CONTENDERS}
        ms = [f"{1e3 * statistics.median(t[n]):.2f}" for n in CONTENDERS]
        table.add_row(
            case.label,
            f"{work(case):,}",
            *ms,
            backends.show_ratio(backends.ratio(t["1t"], t["2t chunked"])),
            backends.show_ratio(backends.ratio(t["1t chunked"], t["2t chunked"])),
        )
    notes = [
        "work: multiply-adds per batch; ch: the batch forced into chunks",
        f"the rule: two chunks (and two threads, when a core is free) from "
        f"{2 * layout.CHUNK_WORK:,} multiply-adds per batch",
    ]
    block = "threads" if args.write_docs else None
    box = [f"**Repeats:** {args.repeats}, interleaved"]
    backends.show_and_write(console, table, notes, info, args.markdown, block, box)


if __name__ == "__main__":
    main()
