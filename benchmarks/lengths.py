"""Training speed with variable-length sequences: a skewed length distribution (most sequences
short, a few long), with and without length bucketing, against fixed-length sequences at the
same padded size.

Data: N sequences padded to T steps, one input and one output (the target is the sum of the
sequence's inputs: mse on the last step); 90% of the lengths are drawn from 1..T/10 and 10%
from T/2..T. One epoch = forward + BPTT + norm clipping + Adam step over all N in minibatches
of B, float64, the same data, initial parameters and orders for every contender, interleaved
(every case, order kind and contender once per repeat); medians over repeats.

    python benchmarks/lengths.py                       # rnn T=100 H=32 and H=128, B=32
    python benchmarks/lengths.py --case 100,32,32,lstm --repeats 3
    python benchmarks/lengths.py --backends numba      # numba alone
    python benchmarks/lengths.py --case 100,32,32,lstm --write-docs  # into docs/results/speed.md

Orders, per epoch (the same seeded permutation underneath):
- ``random``: a plain shuffle, the length mix of every batch is the population's;
- ``bucketed``: the core's ``train.bucket_by_length`` order (``rnnlab.nn.lengths.bucketed_order``):
  sorted by length, cut into batches of B, the batches shuffled: similar lengths share a batch,
  so a batch of short sequences stops early;
- ``fixed``: every sequence full length T (no lengths at all), the padded size's cost.

Each batch costs its longest sequence's steps (the core trims a batch, the numba epoch runner
stops there), and inside a batch a step's products cover only its live sequences on numba.
The aim: numba's lead over numpy with lengths is at least 0.8 of its lead at fixed
length. An rnnlab backend runs through its epoch runner when the core would use it for the plan
(``rnnlab.training.loop.epoch_runner``: numba's fused epoch), else through the core loop; a
backend that does not declare lengths is reported and left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from dataclasses import dataclass

import backends as backends_script
import machine
import numpy as np
import results_page
from rich.table import Table

from rnnlab.experiment.schema import ModelConfig, TrainConfig
from rnnlab.nn.lengths import bucketed_order
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.nn.optim import Optimizer
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan

ORDERS = ("random", "bucketed", "fixed")


@dataclass(frozen=True)
class Case:
    T: int
    H: int
    B: int
    cell: str = "rnn"

    @property
    def label(self) -> str:
        return f"{self.cell} T={self.T} H={self.H} B={self.B}"


CASES = (Case(100, 32, 32), Case(100, 128, 32))


def skewed_lengths(T: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """90% of the lengths in 1..T/10, 10% in T/2..T."""
    short = rng.integers(1, max(T // 10, 1) + 1, size=N)
    long = rng.integers(T // 2, T + 1, size=N)
    return np.where(rng.random(N) < 0.9, short, long).astype(np.int64)


def skewed_data(T: int, N: int, seed: int = 0) -> tuple[Split, np.ndarray]:
    """Inputs padded with zeros after each end, the sum of each sequence's inputs as target."""
    rng = np.random.default_rng(seed)
    lengths = skewed_lengths(T, N, rng)
    x = rng.uniform(-1, 1, (T, N, 1))
    x[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
    return Split(x, x.sum(axis=0)), lengths


def plan_for(case: Case) -> EpochPlan:
    model = ModelConfig(cell=case.cell, hidden_size=case.H)
    train = TrainConfig(
        batch_size=case.B,
        optimizer="adam",
        learning_rate=0.001,
        grad_clip="norm",
        grad_clip_value=1.0,
    )
    return EpochPlan(model, train, "mse", "last")


class Contender:
    """An rnnlab backend: its epoch runner if it has one for the plan, else the core loop."""

    def __init__(self, name: str, case: Case, data: Split, lengths: np.ndarray):
        self.name, self.plan, self.lengths = name, plan_for(case), lengths
        self.fixed = Split(np.ascontiguousarray(data.x), data.y)  # the padded size, no lengths
        backend = Registry().backend(name).load()
        params = init_params(self.plan.model, Shape(1, 1), np.random.default_rng(0))
        self.model = Model(self.plan.model, backend, params)
        self.optimizer = Optimizer(self.plan.train, params)
        t0 = time.perf_counter()
        backend.warm_up(self.plan)
        # the runner for each kind of data, as the core picks it (None: the core loop)
        self.runners = {
            "fixed": epoch_runner(backend, self.plan),
            "ragged": epoch_runner(backend, dataclasses.replace(self.plan, lengths=True)),
        }
        self.warmup = time.perf_counter() - t0
        self.ragged = Split(data.x, data.y, lengths)
        self.why_not = None
        if "lengths" not in getattr(backend, "features", ()):
            self.why_not = f"backend {name!r} does not declare lengths"

    def epoch(self, kind: str, order: np.ndarray) -> float:
        x, y = self.fixed.x, self.fixed.y
        runner = self.runners["fixed" if kind == "fixed" else "ragged"]
        t0 = time.perf_counter()
        if runner is not None:
            lengths = {} if kind == "fixed" else {"lengths": self.lengths}
            runner(self.model.params, self.optimizer, x, y, order, 1e-3, **lengths)
        else:
            split = self.fixed if kind == "fixed" else self.ragged
            reference_epoch(self.model, self.optimizer, self.plan, split, order, 1e-3)
        return time.perf_counter() - t0


def measure(cases, N: int, backends: list[str], repeats: int, log) -> list[dict]:
    setups = {}
    for case in cases:
        data, lengths = skewed_data(case.T, N)
        setups[case] = (lengths, [Contender(name, case, data, lengths) for name in backends])
        for c in setups[case][1]:
            if c.why_not:
                log(f"{case.label}: {c.name} left out: {c.why_not}")
        setups[case] = (lengths, [c for c in setups[case][1] if not c.why_not])
    times = {(case, c.name, kind): [] for case in cases for c in setups[case][1] for kind in ORDERS}
    rng = np.random.default_rng(1)
    for repeat in range(repeats):
        for case in cases:
            lengths, contenders = setups[case]
            order = rng.permutation(N)
            orders = {
                "random": order,
                "bucketed": bucketed_order(rng, lengths, case.B),
                "fixed": order,
            }
            for kind in ORDERS:
                for c in contenders:
                    times[(case, c.name, kind)].append(c.epoch(kind, orders[kind]))
        log(f"repeat {repeat + 1}/{repeats} done")
    rows = []
    for case in cases:
        lengths, contenders = setups[case]
        row = {
            "case": case.label,
            "T": case.T,
            "H": case.H,
            "B": case.B,
            "cell": case.cell,
            "N": N,
            "mean_length": float(lengths.mean()),
            "ms_per_epoch": {},
            "spread_ms": {},
            "warmup_s": {},
        }
        for c in contenders:
            row["warmup_s"][c.name] = c.warmup
            for kind in ORDERS:
                ts = times[(case, c.name, kind)]
                row["ms_per_epoch"][f"{c.name} {kind}"] = 1e3 * statistics.median(ts)
                row["spread_ms"][f"{c.name} {kind}"] = [1e3 * min(ts), 1e3 * max(ts)]
        rows.append(row)
    return rows


def table(rows: list[dict], backends: list[str]) -> Table:
    t = Table(title="ms per training epoch (median; float64; skewed lengths, padded to T)")
    t.add_column("case")
    t.add_column("order")
    for name in backends:
        t.add_column(name, justify="right")
    if len(backends) == 2:
        t.add_column(f"{backends[1]} vs {backends[0]}", justify="right")
        t.add_column("/ fixed ratio (bar >= 0.8)", justify="right")
    for row in rows:
        ms = row["ms_per_epoch"]
        lead = {}  # the last backend's speed-up over the first, per order
        if len(backends) == 2 and all(f"{n} {k}" in ms for n in backends for k in ORDERS):
            lead = {k: ms[f"{backends[0]} {k}"] / ms[f"{backends[1]} {k}"] for k in ORDERS}
        for kind in ORDERS:
            cells = [f"{ms[f'{n} {kind}']:.1f}" if f"{n} {kind}" in ms else "-" for n in backends]
            extra = []
            if len(backends) == 2:
                extra = (
                    [f"{lead[kind]:.2f}x", f"{lead[kind] / lead['fixed']:.2f}"]
                    if lead
                    else ["-", "-"]
                )
            t.add_row(row["case"], kind, *cells, *extra)
    means = {row["T"]: row["mean_length"] for row in rows}
    t.caption = "mean length " + ", ".join(f"{m:.1f} of T={T}" for T, m in means.items())
    return t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sequences", type=int, default=990, help="N, sequences per epoch")
    ap.add_argument(
        "--backends",
        default="numpy,numba",
        help="rnnlab backends, comma-separated; ratios are the last vs the first",
    )
    ap.add_argument(
        "--case",
        action="append",
        metavar="T,H,B[,cell]",
        help="a case to run (repeatable; default: rnn T=100 H=32 and H=128, B=32)",
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    results_page.add_write_docs(ap, "lengths")
    args = ap.parse_args(argv)
    cases = CASES
    if args.case:
        cases = tuple(Case(*map(int, c.split(",")[:3]), *c.split(",")[3:]) for c in args.case)
    backends = args.backends.split(",")
    console = backends_script.console_for(args.json)
    log = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    info = results_page.record(machine.describe(with_torch=False))
    if machine.idle_warning(info):
        log(machine.idle_warning(info))
    rows = measure(cases, args.sequences, backends, args.repeats, log)
    machine.finish(info)
    if args.json:
        print(json.dumps({"machine": info, "rows": rows}, indent=2))
        return
    present = [
        n for n in backends if any(k.startswith(f"{n} ") for r in rows for k in r["ms_per_epoch"])
    ]
    t = table(rows, present)
    warm = ", ".join(f"{n} {s:.2f} s" for n, s in rows[0]["warmup_s"].items())
    notes = [
        t.caption,
        f"warm-up before the first epoch (excluded above; numba compiles or loads its "
        f"cache): {warm}",
    ]
    t.caption = None
    block = "lengths" if args.write_docs else None
    box = [f"**Repeats:** {args.repeats}, interleaved"]
    backends_script.show_and_write(console, t, notes, info, args.markdown, block, box)


if __name__ == "__main__":
    main()
