"""Training speed of rnnlab's backends and of PyTorch CPU, measured side by side in one run.

One epoch = forward + BPTT + norm clipping + Adam step over 990 sine windows in minibatches of
B, in the dtype asked (float64 unless ``--dtype float32``), the same data, initial parameters
and batch order for every contender. Every contender runs one untimed epoch first (anything a
first call compiles or allocates stays out of the figures), then the contenders run
interleaved: every case and contender once per repeat, the order of the contenders rotated from
one repeat to the next, so that a noisy machine slows all alike. The table shows medians over
repeats; each ratio is the median of the per-repeat ratios, with their range (min-max).
Compilation (numba) is excluded and reported apart; ``--compile`` measures it cold and warm in
fresh processes (benchmarks/compile_times.py).

    python benchmarks/backends.py                      # every case, 5 repeats
    python benchmarks/backends.py --repeats 9 --case 10,32,32 --json
    python benchmarks/backends.py --case 100,32,32,lstm --case 100,32,32,gru
    python benchmarks/backends.py --case 10,32,32,lstm,bi     # bidirectional
    python benchmarks/backends.py --dtype float32 --threads  # numba-1t beside numba (auto)
    python benchmarks/backends.py --compile --repeats 0      # compile times only

Contenders: the rnnlab backends of ``--backends`` (ratios are against the last), each as the
core runs it (``rnnlab.training.loop.epoch_runner``: the backend's fused epoch runner when it covers
the plan, else the core loop). A name ``numba-1t`` is the numba backend with
``train.threads = 1``; plain ``numba`` keeps ``train.threads = 0`` (automatic, by size).
``--threads`` adds ``numba-1t`` before ``numba``. On an rnnlab without ``train.threads`` a
``-Nt`` contender is left out (with a note): numba then runs its one-thread kernels.

NumPy's BLAS uses its own threads (OPENBLAS_NUM_THREADS), and OpenBLAS picks its kernels by
``OPENBLAS_CORETYPE``; both are printed in the header, with the CPU, the versions, the load
average before and after, and a warning when the machine was not idle at the start.

PyTorch (torch.nn.RNN/LSTM/GRU + Linear, autograd, torch.optim.Adam, clip_grad_norm_, the
script a user would write) is timed with 1 and 2 threads; the column ``torch`` is the thread
setting with the better median (its per-repeat times give the ratios). It is skipped when
torch is not installed. A new cell is a new ``Case`` (``cell="lstm"``): the rnnlab contenders
take it from the backend, PyTorch from ``TORCH_MODULES``. A bidirectional case
(``bidirectional=True``, ``,bi`` on the command line) reads ``[h_n forward ; h_n reverse]`` of
the top layer.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import statistics
import time
from dataclasses import dataclass

import machine
import numpy as np
from rich.console import Console
from rich.table import Table

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.nn.optim import Optimizer
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan

WINDOWS = 990  # the article's sine data: 1,000 points, windows of 10
TORCH_MODULES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
TORCH_THREADS = (1, 2)
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Case:
    T: int
    H: int
    B: int
    cell: str = "rnn"
    bidirectional: bool = False
    dtype: str = "float64"

    @property
    def label(self) -> str:
        bi = " bi" if self.bidirectional else ""
        dtype = "" if self.dtype == "float64" else f" {self.dtype}"
        return f"{self.cell}{bi} T={self.T} H={self.H} B={self.B}{dtype}"


CASES = (Case(10, 32, 32), Case(10, 32, 1), Case(10, 128, 32), Case(100, 128, 32))
# the gated cells at the adding experiments' H and B, short and long (issue 5: numba must stay
# faster than numpy for them too)
CASES += tuple(Case(T, 32, 32, cell) for cell in ("lstm", "gru") for T in (10, 100))
CASES += (Case(10, 32, 32, "lstm", bidirectional=True),)  # issue 13: both directions


def parse_case(text: str, dtype: str = "float64") -> Case:
    """``T,H,B[,cell[,bi]]`` -> Case."""
    parts = text.split(",")
    return Case(*map(int, parts[:3]), *parts[3:4], bidirectional=parts[4:5] == ["bi"], dtype=dtype)


def sine_data(T: int, dtype: str = "float64") -> Split:
    """WINDOWS windows of T values of sin(0.1 k) and the value after each."""
    series = np.sin(0.1 * np.arange(WINDOWS + T)).astype(dtype)
    idx = np.arange(T)[:, None] + np.arange(WINDOWS)[None, :]
    return Split(np.ascontiguousarray(series[idx][..., None]), series[T:][:, None])


# -- thread settings ---------------------------------------------------------------------------
def has_threads_setting() -> bool:
    """Whether this rnnlab has ``train.threads`` (0 = automatic, n >= 1 forces n)."""
    return "threads" in {f.name for f in dataclasses.fields(TrainConfig)}


def with_threads(train: TrainConfig, threads: int | None) -> TrainConfig:
    """``train`` with ``threads`` set, when the field exists and a value is given."""
    if threads is None or not has_threads_setting():
        return train
    return dataclasses.replace(train, threads=threads)


def parse_contender(name: str) -> tuple[str, int | None]:
    """``numba-1t`` -> ("numba", 1); ``numba`` -> ("numba", None): the default (automatic)."""
    backend, sep, threads = name.rpartition("-")
    if sep and threads.endswith("t") and threads[:-1].isdigit():
        return backend, int(threads[:-1])
    return name, None


def plan_for(case: Case, threads: int | None = None) -> EpochPlan:
    model = ModelConfig(
        cell=case.cell, hidden_size=case.H, bidirectional=case.bidirectional, dtype=case.dtype
    )
    train = TrainConfig(
        batch_size=case.B,
        optimizer="adam",
        learning_rate=0.001,
        grad_clip="norm",
        grad_clip_value=1.0,
    )
    return EpochPlan(model, with_threads(train, threads), "mse", "last")


# -- contenders ---------------------------------------------------------------------------------
class RnnlabContender:
    """An rnnlab backend through the core: its epoch runner if it has one, else the core loop."""

    def __init__(self, name: str, case: Case, data: Split):
        self.name, self.data = name, data
        backend_name, threads = parse_contender(name)
        self.plan = plan_for(case, threads)
        backend = Registry().backend(backend_name).load()
        params = init_params(self.plan.model, Shape(1, 1), np.random.default_rng(0))
        self.model = Model(self.plan.model, backend, params)
        self.optimizer = Optimizer(self.plan.train, params)
        t0 = time.perf_counter()
        backend.warm_up(self.plan)
        self.runner = epoch_runner(backend, self.plan)  # as the core picks it
        self.warmup = time.perf_counter() - t0
        self.threads_used: set[int] = set()  # what an automatic thread choice picked
        if self.runner is not None and threads is None and has_threads_setting():
            # the threaded kernel compiles in the first epoch that picks it: an untimed epoch
            # with every core forced, on copies (the measured parameters stay as they are)
            twin = epoch_runner(backend, plan_for(case, os.cpu_count() or 1))
            p = {k: v.copy() for k, v in params.items()}
            twin(p, Optimizer(self.plan.train, p), data.x, data.y, np.arange(WINDOWS), 1e-3)

    def epoch(self, order: np.ndarray) -> float:
        t0 = time.perf_counter()
        if self.runner is not None:
            self.runner(self.model.params, self.optimizer, self.data.x, self.data.y, order, 1e-3)
            threads = getattr(inspect.unwrap(self.runner), "threads", None)  # read live
            if threads:
                self.threads_used.add(threads)
        else:
            reference_epoch(self.model, self.optimizer, self.plan, self.data, order, 1e-3)
        return time.perf_counter() - t0

    @property
    def path(self) -> str:
        """How the epochs ran, with the thread counts the runner chose (numba picks them per
        epoch from the machine's load when ``train.threads`` is automatic)."""
        if self.runner is None:
            return "core loop"
        used = sorted(self.threads_used)
        if not used:
            return "epoch runner"
        counts = "/".join(str(n) for n in used)
        return f"epoch runner, {counts} thread{'s' if used != [1] else ''}"


class TorchContender:
    """torch.nn.RNN/LSTM/GRU + Linear with autograd, the same initial parameters and optimizer."""

    def __init__(self, case: Case, data: Split, threads: int):
        import torch

        self.torch, self.threads, self.name = torch, threads, f"torch-{threads}t"
        plan = plan_for(case)
        params = init_params(plan.model, Shape(1, 1), np.random.default_rng(0))
        dtype = getattr(torch, case.dtype)
        module = getattr(torch.nn, TORCH_MODULES[case.cell])
        self.rnn = module(1, case.H, dtype=dtype, bidirectional=case.bidirectional)
        self.head = torch.nn.Linear(case.H * (2 if case.bidirectional else 1), 1, dtype=dtype)
        self.bidirectional = case.bidirectional
        with torch.no_grad():
            for name, p in params.items():
                part, key = name.split(".", 1)
                getattr(self.rnn if part == "rnn" else self.head, key).copy_(torch.from_numpy(p))
        self.params = [*self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)
        self.x, self.y = torch.from_numpy(data.x), torch.from_numpy(data.y)
        self.B, self.warmup, self.path = case.B, 0.0, f"autograd, {threads} thread(s)"

    def epoch(self, order: np.ndarray) -> float:
        torch = self.torch
        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        for start in range(0, len(order), self.B):
            idx = torch.from_numpy(order[start : start + self.B])
            hs, state = self.rnn(self.x[:, idx])
            if self.bidirectional:  # [h_n forward ; h_n reverse] of the top layer
                h_n = state[0] if isinstance(state, tuple) else state
                top = torch.cat([h_n[-2], h_n[-1]], dim=-1)
            else:
                top = hs[-1]
            loss = torch.nn.functional.mse_loss(self.head(top), self.y[idx])
            self.opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.opt.step()
        return time.perf_counter() - t0


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def usable_contenders(names: list[str], log) -> list[str]:
    """``names`` without the ``-Nt`` ones when this rnnlab has no ``train.threads``."""
    if has_threads_setting():
        return names
    dropped = [n for n in names if parse_contender(n)[1] is not None]
    if dropped:
        log(f"note: this rnnlab has no train.threads setting; left out {', '.join(dropped)}")
    return [n for n in names if n not in dropped]


def contenders(case: Case, backends: list[str], with_torch: bool) -> list:
    data = sine_data(case.T, case.dtype)
    out = [RnnlabContender(name, case, data) for name in backends]
    if with_torch:
        out += [TorchContender(case, data, threads) for threads in TORCH_THREADS]
    return out


# -- measuring ----------------------------------------------------------------------------------
def interleave(setups: dict, repeats: int, orders, log) -> dict:
    """Seconds of every contender's epochs, ``{(key, name): [per repeat]}``. ``setups`` maps a
    key (a case) to its contenders, each with ``epoch(order) -> seconds``; ``orders(key)``
    gives the next order for that key. One untimed epoch each first; then per repeat every key
    and contender once, the contenders' order rotated by the repeat's number, each timed epoch
    starting once the previous contender's threads are idle (``machine.settle``)."""
    for key, group in setups.items():
        order = orders(key)
        for c in group:
            c.epoch(order)
    times = {(key, c.name): [] for key, group in setups.items() for c in group}
    for repeat in range(repeats):
        for key, group in setups.items():
            order = orders(key)
            shift = repeat % len(group)
            for c in group[shift:] + group[:shift]:
                machine.settle()
                times[(key, c.name)].append(c.epoch(order))
        log(f"repeat {repeat + 1}/{repeats} done")
    return times


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratio(slow: list[float], fast: list[float]) -> dict:
    """How many times faster ``fast`` is: the per-repeat ratios (paired, as the repeats were
    interleaved), their median and range."""
    return spread([s / f for s, f in zip(slow, fast, strict=True)])


def best_torch(seconds: dict[str, list[float]]) -> str | None:
    """The torch thread setting with the lower median, or None without torch."""
    names = [n for n in seconds if n.startswith("torch-")]
    return min(names, key=lambda n: statistics.median(seconds[n])) if names else None


def case_row(case: Case, group: list, times: dict) -> dict:
    seconds = {c.name: times[(case, c.name)] for c in group}
    torch_name = best_torch(seconds)
    if torch_name is not None:
        seconds["torch"] = seconds[torch_name]
    return {
        "case": case.label,
        **dataclasses.asdict(case),
        "seconds": seconds,
        "ms_per_epoch": {n: 1e3 * statistics.median(ts) for n, ts in seconds.items()},
        "spread_ms": {n: [1e3 * min(ts), 1e3 * max(ts)] for n, ts in seconds.items()},
        "warmup_s": {c.name: c.warmup for c in group},
        "path": {c.name: c.path for c in group},
        "torch_threads": torch_name,
    }


def measure(cases, backends: list[str], repeats: int, with_torch: bool, log) -> list[dict]:
    """Every contender on every case, interleaved; one row per case."""
    setups = {case: contenders(case, backends, with_torch) for case in cases}
    rng = np.random.default_rng(1)
    times = interleave(setups, repeats, lambda case: rng.permutation(WINDOWS), log)
    return [case_row(case, setups[case], times) for case in cases]


def ratios(row: dict, fast: str) -> dict[str, dict]:
    """``fast``'s speed-up over every other contender of the row (torch: the best setting)."""
    s = row["seconds"]
    return {n: ratio(s[n], s[fast]) for n in s if n != fast and not n.startswith("torch-")}


def show_ratio(r: dict) -> str:
    return f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"


def table(rows: list[dict], backends: list[str]) -> Table:
    dtypes = sorted({row["dtype"] for row in rows})
    t = Table(
        title=f"ms per training epoch (median over repeats; {', '.join(dtypes)}; "
        f"{WINDOWS} sequences); ratios: median (min-max) of per-repeat ratios"
    )
    t.add_column("case")
    names = [*backends, *(["torch"] if "torch" in rows[0]["seconds"] else [])]
    for name in names:
        t.add_column(name, justify="right")
    last = backends[-1]
    others = [n for n in names if n != last]
    for name in others:
        t.add_column(f"{last} vs {name}", justify="right")
    for row in rows:
        ms, r = row["ms_per_epoch"], ratios(row, last)
        cells = [
            f"{ms[n]:.1f}" + (f" ({row['torch_threads'][6:]})" if n == "torch" else "")
            for n in names
        ]
        t.add_row(row["case"], *cells, *(show_ratio(r[n]) for n in others))
    return t


def console_for(json_output: bool) -> Console:
    """Where tables go: stderr when JSON takes stdout; wide enough for the tables when the
    output is a file or a pipe (rich would wrap them at 80 columns)."""
    console = Console(stderr=json_output)
    if not console.is_terminal:
        console.width = 160
    return console


def markdown(table: Table) -> str:
    """A rich table as a Markdown table (for the README), its title as a caption line."""
    columns = [[str(c.header), *map(str, c.cells)] for c in table.columns]
    lines = [" | ".join(row) for row in zip(*columns, strict=True)]
    rule = "|".join("---" for _ in columns)
    return "\n".join(
        [f"{table.title}", "", f"| {lines[0]} |", f"|{rule}|"]
        + [f"| {line} |" for line in lines[1:]]
    )


def emit(console: Console, table: Table, as_markdown: bool) -> None:
    if as_markdown:
        console.print(markdown(table), highlight=False, markup=False, soft_wrap=True)
    else:
        console.print(table)


def print_header(console: Console, info: dict) -> None:
    for line in machine.header_lines(info):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs per contender (0: none)")
    ap.add_argument(
        "--backends",
        default="numpy,numba",
        help="rnnlab contenders, comma-separated (numba-1t: one thread); ratios against the last",
    )
    ap.add_argument(
        "--case",
        action="append",
        metavar="T,H,B[,cell[,bi]]",
        help="a case to run (repeatable; default: the standard ones)",
    )
    ap.add_argument(
        "--dtype",
        action="append",
        choices=DTYPES,
        help="dtype of every contender (repeatable: each case in each; default float64; "
        "--compile: both unless given)",
    )
    ap.add_argument("--threads", action="store_true", help="add numba-1t (train.threads = 1)")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also measure numba's cold and warm compile per cell and dtype, and the warm "
        "start of `rnnlab run`, in fresh processes",
    )
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = ap.parse_args(argv)
    dtypes = args.dtype or ["float64"]
    base = tuple(parse_case(c) for c in args.case) if args.case else CASES
    cases = tuple(dataclasses.replace(c, dtype=d) for c in base for d in dtypes)
    console = console_for(args.json)
    log = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    backends = args.backends.split(",")
    if args.threads and "numba-1t" not in backends:  # just before numba (automatic)
        at = backends.index("numba") if "numba" in backends else len(backends)
        backends.insert(at, "numba-1t")
    backends = usable_contenders(backends, log)
    with_torch = not args.no_torch and torch_available()
    if not with_torch and not args.no_torch:
        log("torch is not installed: PyTorch is skipped")
    info = machine.describe(with_torch)
    if machine.idle_warning(info):
        log(machine.idle_warning(info))
    out: dict = {"machine": info}
    if args.repeats > 0:
        out["rows"] = measure(cases, backends, args.repeats, with_torch, log)
    if args.compile:
        import compile_times

        out["compile"] = compile_times.measure(args.dtype or list(DTYPES), log)
    machine.finish(info)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    if "rows" in out:
        emit(console, table(out["rows"], backends), args.markdown)
        row = out["rows"][0]
        warm = ", ".join(f"{n} {row['warmup_s'][n]:.2f} s" for n in backends)
        log(
            f"warm-up before the first epoch (excluded above; numba compiles or loads its "
            f"cache), {row['case']}: {warm}"
        )
        for row in out["rows"]:
            log(f"path, {row['case']}: " + ", ".join(f"{n} {row['path'][n]}" for n in backends))
    if "compile" in out:
        import compile_times

        compile_times.show(console, out["compile"], args.markdown)
    print_header(console, info)


if __name__ == "__main__":
    main()
