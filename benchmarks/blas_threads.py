"""Where a second BLAS thread pays for the NumPy backend: one thread against two, on single
matrix products of the sizes a recurrence makes and on whole epochs of a copy-like task.

- products: ``[N, H] x [H, 4H]`` (an lstm's step product) for a range of N and H, each timed
  over enough calls to take ~20 ms, under a BLAS limit of 1 and of 2 threads (threadpoolctl);
- epochs: a copy-like task on the numpy backend through the core loop (10 symbols to
  remember, one-hot inputs, cross-entropy at every step, Adam, norm clipping): ``1t`` and ``2t``
  forced, and ``rnnlab`` as a run chooses (``rnnlab.training.blas.blas_threads``: the backend's
  rule, ``train.threads = 0``).

- ``--busy-core``: the numpy backend's copy-like epoch on a machine with one core busy (the
  script starts a busy loop pinned to one core itself and stops it at the end), each setting in
  its own process: ``rnnlab`` (``OPENBLAS_NUM_THREADS`` unset, the threads a run chooses),
  ``pinned`` (``OPENBLAS_NUM_THREADS=1`` in that process's environment) and ``default``
  (``OPENBLAS_NUM_THREADS`` unset, OpenBLAS's own count: one thread per core, what a run
  without rnnlab's choice had). The bar: ``rnnlab`` within 1.5x of ``pinned``.

Interleaved (every contender once per repeat, the order rotated from one repeat to the next,
each after this process's other threads are idle), medians over repeats; a ratio is the median
of the per-repeat ratios, with their range. The header says the machine, versions, BLAS and
load average: under load a second thread rarely pays, on an idle machine it may.

    python benchmarks/blas_threads.py                      # products and epochs, 7 repeats
    python benchmarks/blas_threads.py --no-epochs --repeats 9
    python benchmarks/blas_threads.py --epoch-case 50,64,32 --epoch-case 50,256,128
    OPENBLAS_NUM_THREADS=1 python benchmarks/blas_threads.py --no-products   # the env's figure
    python benchmarks/blas_threads.py --busy-core --repeats 5     # one core busy: the bar
    python benchmarks/blas_threads.py --busy-core --write-docs    # into docs/results/speed.md

No setting of ``OPENBLAS_CORETYPE`` is changed: OpenBLAS's kernels are those the environment
gives (the header says which).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import machine
import numpy as np
import results_page
from backends import markdown
from rich.console import Console
from rich.table import Table
from threadpoolctl import ThreadpoolController

from rnnlab.experiment.schema import ModelConfig, TrainConfig
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
BUSY_CASE = (50, 64, 32)  # the copy-like task at H=64 the busy-core bar names
BUSY_BAR = 1.5  # rnnlab's choice within this factor of OPENBLAS_NUM_THREADS=1
BUSY_SETTINGS = ("rnnlab", "pinned", "default")


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


# -- one core busy --------------------------------------------------------------------------------
def start_busy_loop() -> subprocess.Popen:
    """A process spinning on the last usable core (until :func:`stop`)."""
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(loop.pid, {cores[-1]})
    return loop


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


class BusyWorker:
    """One setting of the busy-core comparison in its own process (``--worker``), so that
    ``OPENBLAS_NUM_THREADS`` is read by OpenBLAS as it starts; ``epoch(seed)`` runs one epoch
    there and returns its seconds."""

    def __init__(self, setting: str, case: tuple[int, int, int]):
        self.name = setting
        env = dict(os.environ)
        env.pop("OPENBLAS_NUM_THREADS", None)
        if setting == "pinned":
            env["OPENBLAS_NUM_THREADS"] = "1"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", setting]
        command += ["--epoch-case", ",".join(map(str, case))]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.threads = self.reply()["threads"]

    def reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"the {self.name} worker stopped (exit {self.proc.returncode})")
        return json.loads(line)

    def epoch(self, seed: int) -> float:
        self.proc.stdin.write(f"{seed}\n")
        self.proc.stdin.flush()
        return self.reply()["seconds"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def worker(setting: str, case: tuple[int, int, int]) -> None:
    """The child of :class:`BusyWorker`: one untimed epoch, then an epoch per line read (the
    line: the seed of its order), its seconds printed as JSON."""
    controller = ThreadpoolController()
    own = controller.select(user_api="blas").info()[0]["num_threads"]  # OpenBLAS's own count
    contender = EpochContender(case, own if setting == "default" else None, controller)
    chosen = own if setting == "default" else blas_threads_chosen(contender)
    contender.epoch(np.random.default_rng(0).permutation(SEQUENCES))
    print(json.dumps({"threads": chosen}), flush=True)
    for line in sys.stdin:
        order = np.random.default_rng(int(line)).permutation(SEQUENCES)
        print(json.dumps({"seconds": contender.epoch(order)}), flush=True)


def measure_busy(case, repeats: int, log) -> dict:
    """The copy-like epoch under each setting with one core kept busy, interleaved (the order
    rotated per repeat, 0.3 s between epochs for the last one's BLAS threads to stop
    spinning); per-repeat ratios against ``pinned``."""
    workers: list[BusyWorker] = []
    loop = None
    times: dict[str, list[float]] = {name: [] for name in BUSY_SETTINGS}
    try:
        workers += [BusyWorker(name, case) for name in BUSY_SETTINGS]
        loop = start_busy_loop()
        time.sleep(1.0)  # the loop at full speed
        for repeat in range(repeats):
            shift = repeat % len(workers)
            for w in workers[shift:] + workers[:shift]:
                time.sleep(0.3)
                times[w.name].append(w.epoch(repeat + 1))
            log(f"busy core: repeat {repeat + 1}/{repeats} done")
    finally:
        if loop is not None:
            stop(loop)
        for w in workers:
            w.close()
    pinned = times["pinned"]
    ratios = {
        n: [a / b for a, b in zip(s, pinned, strict=True)]
        for n, s in times.items()
        if n != "pinned"
    }
    return {
        "case": "lstm T={} H={} B={}".format(*case),
        "threads": {w.name: w.threads for w in workers},
        "seconds": times,
        "vs_pinned": {n: [statistics.median(r), min(r), max(r)] for n, r in ratios.items()},
        "bar": BUSY_BAR,
        "pass": statistics.median(ratios["rnnlab"]) <= BUSY_BAR,
    }


def busy_table(result: dict) -> Table:
    table = Table(
        title=f"copy-like epoch ({result['case']}, {SEQUENCES} sequences, numpy backend) "
        "with one core kept busy: seconds per epoch, median (min-max)"
    )
    for col in ("setting", "BLAS threads", "s per epoch", "vs pinned (range)", "bar", "verdict"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    labels = {
        "rnnlab": "rnnlab's choice, OPENBLAS_NUM_THREADS unset",
        "pinned": "OPENBLAS_NUM_THREADS=1",
        "default": "OpenBLAS's default count (no choice)",
    }
    for name in BUSY_SETTINGS:
        s = result["seconds"][name]
        r = result["vs_pinned"].get(name)
        table.add_row(
            labels[name],
            str(result["threads"][name]),
            f"{statistics.median(s):.2f} ({min(s):.2f}-{max(s):.2f})",
            f"{r[0]:.2f}x ({r[1]:.2f}-{r[2]:.2f})" if r else "1",
            f"<= {result['bar']:g}x" if name == "rnnlab" else "",
            ("PASS" if result["pass"] else "FAIL") if name == "rnnlab" else "",
        )
    return table


def parse_case(text: str) -> tuple[int, int, int]:
    T, H, B = map(int, text.split(","))
    return T, H, B


def product_table(products: list[dict]) -> Table:
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
    return table


def epoch_table(epochs: list[dict]) -> Table:
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
    return table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--epoch-case", action="append", help="T,H,B of an lstm (repeatable)")
    ap.add_argument("--no-products", action="store_true")
    ap.add_argument("--no-epochs", action="store_true")
    ap.add_argument(
        "--busy-core",
        action="store_true",
        help="only the copy-like epoch with one core kept busy (a busy loop this script starts)",
    )
    ap.add_argument("--worker", choices=BUSY_SETTINGS, help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the figures and the header to this file")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    results_page.add_write_docs(
        ap,
        "blas_busy with --busy-core, else blas_threads",
        "the tables and how they were measured",
    )
    args = ap.parse_args(argv)
    cases = [parse_case(c) for c in args.epoch_case] if args.epoch_case else None
    if args.worker:
        worker(args.worker, cases[0])
        return
    console = Console()
    if not console.is_terminal:
        console.width = 160
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    info = results_page.record(machine.describe(with_torch=False))
    if machine.idle_warning(info):
        log(machine.idle_warning(info))
    controller = ThreadpoolController()
    products, epochs, busy = [], [], None
    if args.busy_core:
        busy = measure_busy(cases[0] if cases else BUSY_CASE, args.repeats, log)
    else:
        if not args.no_products:
            products = measure_products(controller, args.repeats, log)
        if not args.no_epochs:
            epochs = measure_epochs(cases or list(EPOCH_CASES), controller, args.repeats, log)
    machine.finish(info)
    tables = [product_table(products)] if products else []
    tables += [epoch_table(epochs)] if epochs else []
    tables += [busy_table(busy)] if busy else []
    for table in tables:
        if args.markdown:
            console.print(markdown(table), highlight=False, markup=False, soft_wrap=True)
        else:
            console.print(table)
    for line in machine.header_lines(info):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if args.write_docs and tables:
        block = "blas_busy" if busy else "blas_threads"
        figures = "\n\n".join(markdown(t) for t in tables)
        notes = [f"**Repeats:** {args.repeats}, interleaved"]
        if busy:
            notes.append(
                "**Busy core:** a `while True: pass` process pinned to the last core, started "
                "and stopped by the command"
            )
        page = results_page.write_block(block, figures, info, notes=notes)
        log(f"wrote block {block!r} of {page}")
    if args.json:
        with open(args.json, "w") as f:
            out = {"machine": info, "products": products, "epochs": epochs, "busy_core": busy}
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
