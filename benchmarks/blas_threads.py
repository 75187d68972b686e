"""Where a second BLAS thread pays for the NumPy backend: one thread against two, on single
matrix products of the sizes a recurrence makes and on whole epochs of a copy-like task.

- products: ``[N, H] x [H, 4H]`` (an lstm's step product) for a range of N and H, each timed
  over enough calls to take ~20 ms, under a BLAS limit of 1 and of 2 threads (threadpoolctl);
- epochs: a copy-like task on the numpy backend through the core loop (10 symbols to
  remember, one-hot inputs, cross-entropy at every step, Adam, norm clipping): ``1t`` and ``2t``
  forced, and ``rnnlab`` as a run chooses (``rnnlab.training.blas.blas_threads``: the backend's
  rule, ``train.threads = 0``).

Interleaved (every contender once per repeat, the order rotated from one repeat to the next,
each after this process's other threads are idle), medians over repeats; a ratio is the median
of the per-repeat ratios, with their range. The header says the machine, versions, BLAS and
load average: under load a second thread rarely pays, on an idle machine it may.

    python benchmarks/blas_threads.py                      # products and epochs, 7 repeats
    python benchmarks/blas_threads.py --no-epochs --repeats 9
    python benchmarks/blas_threads.py --epoch-case 50,64,32 --epoch-case 50,256,128
    OPENBLAS_NUM_THREADS=1 python benchmarks/blas_threads.py --no-products   # the env's figure
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import machine
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import ThreadpoolController

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.nn.optim import Optimizer
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.training.blas import blas_threads
from rnnlab.training.loop import reference_epoch
from rnnlab.training.session import EpochPlan
from rnnlab_numpy.threads import TWO_THREAD_FLOPS

PRODUCTS = tuple(
    (N, H)
    for N, H in (
        (32, 32),
        (32, 64),
        (32, 128),
        (128, 128),
        (32, 256),
        (128, 256),
        (128, 512),
        (256, 512),
        (512, 512),
        (256, 1024),
    )
)
EPOCH_CASES = ((50, 64, 32), (50, 256, 128))  # T, H, B of an lstm
SYMBOLS, REMEMBER, SEQUENCES = 8, 10, 512
CALL_SECONDS = 0.02


def flops(N: int, H: int) -> float:
    return 2.0 * N * H * 4 * H


def time_products(a: np.ndarray, w: np.ndarray, calls: int) -> float:
    out = np.empty((a.shape[0], w.shape[1]))
    t0 = time.perf_counter()
    for _ in range(calls):
        np.matmul(a, w, out=out)
    return (time.perf_counter() - t0) / calls


def measure_products(controller, repeats: int, log) -> list[dict]:
    rng = np.random.default_rng(0)
    setups = []
    for N, H in PRODUCTS:
        a, w = rng.standard_normal((N, H)), rng.standard_normal((H, 4 * H))
        per_call = time_products(a, w, 3)
        setups.append((N, H, a, w, max(3, int(CALL_SECONDS / max(per_call, 1e-7)))))
    times = {(N, H, n): [] for N, H, *_ in setups for n in (1, 2)}
    for repeat in range(repeats):
        for N, H, a, w, calls in setups:
            for n in (1, 2) if repeat % 2 == 0 else (2, 1):
                with controller.limit(limits=n, user_api="blas"):
                    machine.settle()
                    times[(N, H, n)].append(time_products(a, w, calls))
        log(f"products: repeat {repeat + 1}/{repeats} done")
    rows = []
    for N, H, *_ in setups:
        one, two = times[(N, H, 1)], times[(N, H, 2)]
        ratios = [o / t for o, t in zip(one, two, strict=True)]
        rows.append(
            {
                "N": N,
                "H": H,
                "mflop": flops(N, H) / 1e6,
                "us_1t": 1e6 * statistics.median(one),
                "us_2t": 1e6 * statistics.median(two),
                "gain_2t": [statistics.median(ratios), min(ratios), max(ratios)],
                "rule": 2 if flops(N, H) >= TWO_THREAD_FLOPS else 1,
            }
        )
    return rows


def copy_data(T: int, rng: np.random.Generator) -> Split:
    """Copy-like sequences: REMEMBER random symbols, blanks, a marker at step T - REMEMBER - 1,
    then the symbols to be repeated in the last REMEMBER steps (class SYMBOLS: blank)."""
    blank, marker = SYMBOLS, SYMBOLS + 1
    symbols = rng.integers(0, SYMBOLS, (REMEMBER, SEQUENCES))
    tokens = np.full((T, SEQUENCES), blank)
    tokens[:REMEMBER] = symbols
    tokens[T - REMEMBER - 1] = marker
    y = np.full((T, SEQUENCES), blank, dtype=np.int64)
    y[T - REMEMBER :] = symbols
    return Split(np.eye(SYMBOLS + 2)[tokens], y)


class EpochContender:
    """The numpy backend on the copy-like task with ``threads`` BLAS threads (None: as a run
    chooses them, via the backend's rule)."""

    def __init__(self, case, threads, controller):
        T, H, B = case
        self.name = f"{threads}t" if threads else "rnnlab"
        model = ModelConfig(cell="lstm", hidden_size=H)
        train = TrainConfig(batch_size=B, optimizer="adam", grad_clip="norm", grad_clip_value=1.0)
        self.plan = EpochPlan(model, train, "xent", "every")
        rng = np.random.default_rng(0)
        self.data = copy_data(T, rng)
        backend = Registry().backend("numpy").load()
        params = init_params(model, Shape(SYMBOLS + 2, SYMBOLS + 1), np.random.default_rng(0))
        self.model = Model(model, backend, params)
        self.optimizer = Optimizer(train, params)
        self.backend, self.threads, self.controller = backend, threads, controller

    def epoch(self, order: np.ndarray) -> float:
        if self.threads is None:
            limit = blas_threads(self.backend, self.plan)
        else:
            limit = self.controller.limit(limits=self.threads, user_api="blas")
        with limit:
            t0 = time.perf_counter()
            reference_epoch(self.model, self.optimizer, self.plan, self.data, order, 1e-3)
            return time.perf_counter() - t0


def measure_epochs(cases, controller, repeats: int, log) -> list[dict]:
    setups = {case: [EpochContender(case, n, controller) for n in (1, 2, None)] for case in cases}
    rng = np.random.default_rng(1)
    for group in setups.values():  # one untimed epoch each
        for c in group:
            c.epoch(rng.permutation(SEQUENCES))
    times = {(case, c.name): [] for case, group in setups.items() for c in group}
    for repeat in range(repeats):
        for case, group in setups.items():
            order = rng.permutation(SEQUENCES)
            shift = repeat % len(group)
            for c in group[shift:] + group[:shift]:
                machine.settle()
                times[(case, c.name)].append(c.epoch(order))
        log(f"epochs: repeat {repeat + 1}/{repeats} done")
    rows = []
    for case, group in setups.items():
        secs = {c.name: times[(case, c.name)] for c in group}
        rows.append(
            {
                "case": "lstm T={} H={} B={}".format(*case),
                "ms": {n: 1e3 * statistics.median(s) for n, s in secs.items()},
                "vs_1t": {
                    n: statistics.median([a / b for a, b in zip(s, secs["1t"], strict=True)])
                    for n, s in secs.items()
                    if n != "1t"
                },
                "rnnlab_threads": blas_threads_chosen(group[-1]),
            }
        )
    return rows


def blas_threads_chosen(contender: EpochContender) -> int:
    with blas_threads(contender.backend, contender.plan) as used:
        return used["threads"]


def parse_case(text: str) -> tuple[int, int, int]:
    T, H, B = map(int, text.split(","))
    return T, H, B


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--epoch-case", action="append", help="T,H,B of an lstm (repeatable)")
    ap.add_argument("--no-products", action="store_true")
    ap.add_argument("--no-epochs", action="store_true")
    ap.add_argument("--json", help="also write the figures and the header to this file")
    args = ap.parse_args(argv)
    console = Console()
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    info = machine.describe(with_torch=False)
    controller = ThreadpoolController()
    products = [] if args.no_products else measure_products(controller, args.repeats, log)
    cases = [parse_case(c) for c in args.epoch_case] if args.epoch_case else list(EPOCH_CASES)
    epochs = [] if args.no_epochs else measure_epochs(cases, controller, args.repeats, log)
    machine.finish(info)
    for line in machine.header_lines(info):
        console.print(line, highlight=False)
    if products:
        table = Table(title="one product [N, H] x [H, 4H]: microseconds per call, median")
        for col in ("N", "H", "MFLOP", "1 thread", "2 threads", "2t gain (range)", "rule"):
            table.add_column(col, justify="right")
        for r in products:
            g = r["gain_2t"]
            table.add_row(
                str(r["N"]),
                str(r["H"]),
                f"{r['mflop']:.2f}",
                f"{r['us_1t']:.1f}",
                f"{r['us_2t']:.1f}",
                f"{g[0]:.2f}x ({g[1]:.2f}-{g[2]:.2f})",
                f"{r['rule']}t",
            )
        console.print(table)
    if epochs:
        table = Table(title="copy-like epoch, numpy backend: ms per epoch, median")
        names = list(epochs[0]["ms"])
        for col in ("case", *names, *(f"{n} / 1t" for n in names if n != "1t"), "rnnlab chose"):
            table.add_column(col, justify="right")
        for r in epochs:
            table.add_row(
                r["case"],
                *(f"{r['ms'][n]:.0f}" for n in names),
                *(f"{r['vs_1t'][n]:.2f}x" for n in names if n != "1t"),
                f"{r['rnnlab_threads']}t",
            )
        console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "products": products, "epochs": epochs}, f, indent=1)


if __name__ == "__main__":
    main()
