"""Training speed of rnnlab's backends and of PyTorch CPU, measured side by side in one run.

One epoch = forward + BPTT + clipping + Adam step over 990 sine windows in minibatches of B,
float64, the same data, initial parameters and batch order for every contender. Contenders run
interleaved (every case and contender once per repeat) so that a noisy machine slows all alike;
the table shows medians over repeats. Compilation (numba) is excluded and reported apart.

    python benchmarks/backends.py                      # every case, 5 repeats
    python benchmarks/backends.py --repeats 9 --case 10,32,32 --json
    python benchmarks/backends.py --case 100,32,32,lstm --case 100,32,32,gru
    python benchmarks/backends.py --case 10,32,32,lstm,bi     # bidirectional

The numba backend's fused epoch picks its threads by size (``train.threads`` = 0). NumPy's
BLAS uses its own threads (OPENBLAS_NUM_THREADS): on a busy machine they can slow NumPy down
many times over at H=128, so when comparing there, run once more with OPENBLAS_NUM_THREADS=1
and report both.

PyTorch (torch.nn.RNN + Linear, autograd, torch.optim.Adam) is timed with 1 and 2 threads and
the better of the two is shown; it is skipped when torch is not installed. A new cell is a new
``Case`` (``cell="lstm"``): the rnnlab contenders take it from the backend, PyTorch from
``TORCH_MODULES``. A bidirectional case (``bidirectional=True``, ``,bi`` on the command line)
reads ``[h_n forward ; h_n reverse]`` of the top layer; rnnlab composes it from the backends'
layer kernels in its core loop (numba's fused epoch runner does not cover it yet).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from rnnlab.config import ModelConfig, TrainConfig
from rnnlab.model import Model, Shape, init_params
from rnnlab.optim import Optimizer
from rnnlab.plugins import Registry
from rnnlab.specs import Split
from rnnlab.train import EpochPlan, epoch_runner, reference_epoch

WINDOWS = 990  # the article's sine data: 1,000 points, windows of 10
TORCH_MODULES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


@dataclass(frozen=True)
class Case:
    T: int
    H: int
    B: int
    cell: str = "rnn"
    bidirectional: bool = False

    @property
    def label(self) -> str:
        return f"{self.cell}{' bi' if self.bidirectional else ''} T={self.T} H={self.H} B={self.B}"


CASES = (Case(10, 32, 32), Case(10, 32, 1), Case(10, 128, 32), Case(100, 128, 32))
# the gated cells at the adding experiments' H and B, short and long (issue 5: numba must stay
# faster than numpy for them too)
CASES += tuple(Case(T, 32, 32, cell) for cell in ("lstm", "gru") for T in (10, 100))
CASES += (Case(10, 32, 32, "lstm", bidirectional=True),)  # issue 13: both directions


def sine_data(T: int) -> Split:
    """WINDOWS windows of T values of sin(0.1 k) and the value after each."""
    series = np.sin(0.1 * np.arange(WINDOWS + T))
    idx = np.arange(T)[:, None] + np.arange(WINDOWS)[None, :]
    return Split(series[idx][..., None], series[T:][:, None])


def plan_for(case: Case) -> EpochPlan:
    model = ModelConfig(cell=case.cell, hidden_size=case.H, bidirectional=case.bidirectional)
    train = TrainConfig(
        batch_size=case.B,
        optimizer="adam",
        learning_rate=0.001,
        grad_clip="norm",
        grad_clip_value=1.0,
    )
    return EpochPlan(model, train, "mse", "last")


class RnnlabContender:
    """An rnnlab backend through the core: its epoch runner if it has one, else the core loop."""

    def __init__(self, name: str, case: Case, data: Split):
        self.name, self.data, self.plan = name, data, plan_for(case)
        backend = Registry().backend(name).load()
        params = init_params(self.plan.model, Shape(1, 1), np.random.default_rng(0))
        self.model = Model(self.plan.model, backend, params)
        self.optimizer = Optimizer(self.plan.train, params)
        t0 = time.perf_counter()
        backend.warm_up(self.plan)
        self.runner = epoch_runner(backend, self.plan)  # as the core picks it
        self.warmup = time.perf_counter() - t0

    def epoch(self, order: np.ndarray) -> float:
        t0 = time.perf_counter()
        if self.runner is not None:
            self.runner(self.model.params, self.optimizer, self.data.x, self.data.y, order, 1e-3)
        else:
            reference_epoch(self.model, self.optimizer, self.plan, self.data, order, 1e-3)
        return time.perf_counter() - t0


class TorchContender:
    """torch.nn.RNN/LSTM/GRU + Linear with autograd, the same initial parameters and optimizer."""

    def __init__(self, case: Case, data: Split, threads: int):
        import torch

        self.torch, self.threads, self.name = torch, threads, f"torch-{threads}t"
        plan = plan_for(case)
        params = init_params(plan.model, Shape(1, 1), np.random.default_rng(0))
        module = getattr(torch.nn, TORCH_MODULES[case.cell])
        self.rnn = module(1, case.H, dtype=torch.float64, bidirectional=case.bidirectional)
        self.head = torch.nn.Linear(
            case.H * (2 if case.bidirectional else 1), 1, dtype=torch.float64
        )
        self.bidirectional = case.bidirectional
        with torch.no_grad():
            for name, p in params.items():
                part, key = name.split(".", 1)
                getattr(self.rnn if part == "rnn" else self.head, key).copy_(torch.from_numpy(p))
        self.params = [*self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)
        self.x, self.y = torch.from_numpy(data.x), torch.from_numpy(data.y)
        self.B, self.warmup = case.B, 0.0

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


def contenders(case: Case, data: Split, backends: list[str], with_torch: bool) -> list:
    out = [RnnlabContender(name, case, data) for name in backends]
    if with_torch:
        out += [TorchContender(case, data, threads) for threads in (1, 2)]
    return out


def measure(cases, backends: list[str], repeats: int, with_torch: bool, log) -> list[dict]:
    """Seconds per epoch of every contender on every case, interleaved; medians per case."""
    setups = {case: contenders(case, sine_data(case.T), backends, with_torch) for case in cases}
    times = {(case, c.name): [] for case in cases for c in setups[case]}
    rng = np.random.default_rng(1)
    for repeat in range(repeats):
        for case in cases:
            order = rng.permutation(WINDOWS)
            for c in setups[case]:
                times[(case, c.name)].append(c.epoch(order))
        log(f"repeat {repeat + 1}/{repeats} done")
    rows = []
    for case in cases:
        row = {
            "case": case.label,
            "T": case.T,
            "H": case.H,
            "B": case.B,
            "cell": case.cell,
            "ms_per_epoch": {},
            "spread_ms": {},
            "warmup_s": {},
        }
        for c in setups[case]:
            ts = times[(case, c.name)]
            row["ms_per_epoch"][c.name] = 1e3 * statistics.median(ts)
            row["spread_ms"][c.name] = [1e3 * min(ts), 1e3 * max(ts)]
            row["warmup_s"][c.name] = c.warmup
        torch_ms = [v for k, v in row["ms_per_epoch"].items() if k.startswith("torch")]
        if torch_ms:
            best = min(torch_ms)
            row["ms_per_epoch"]["torch"] = best
            row["torch_threads"] = next(
                k for k, v in row["ms_per_epoch"].items() if k.startswith("torch-") and v == best
            )
        rows.append(row)
    return rows


def table(rows: list[dict], backends: list[str]) -> Table:
    t = Table(title="ms per training epoch (median; float64; 990 sequences)")
    t.add_column("case")
    names = [*backends, *(["torch"] if "torch" in rows[0]["ms_per_epoch"] else [])]
    for name in names:
        t.add_column(name, justify="right")
    last = backends[-1]
    others = [n for n in names if n != last]
    for name in others:
        t.add_column(f"{last} vs {name}", justify="right")
    for row in rows:
        ms = row["ms_per_epoch"]
        cells = [
            f"{ms[n]:.1f}" + (f" ({row['torch_threads'][6:]})" if n == "torch" else "")
            for n in names
        ]
        ratios = [f"{ms[n] / ms[last]:.1f}x" for n in others]
        t.add_row(row["case"], *cells, *ratios)
    return t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--backends",
        default="numpy,numba",
        help="rnnlab backends, comma-separated; ratios are against the last",
    )
    ap.add_argument(
        "--case",
        action="append",
        metavar="T,H,B[,cell[,bi]]",
        help="a case to run (repeatable; default: the four standard ones)",
    )
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    cases = CASES
    if args.case:
        cases = tuple(
            Case(
                *map(int, c.split(",")[:3]),
                *c.split(",")[3:4],
                bidirectional=c.split(",")[4:5] == ["bi"],
            )
            for c in args.case
        )
    backends = args.backends.split(",")
    try:
        import torch  # noqa: F401

        with_torch = not args.no_torch
    except ImportError:
        with_torch = False
    console = Console(stderr=args.json)
    if not with_torch and not args.no_torch:
        console.print("torch is not installed: PyTorch is skipped")
    rows = measure(
        cases, backends, args.repeats, with_torch, lambda m: console.print(m, highlight=False)
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    console.print(table(rows, backends))
    warm = ", ".join(f"{n} {rows[0]['warmup_s'][n]:.2f} s" for n in backends)
    console.print(
        f"warm-up before the first epoch (excluded above; numba compiles or loads its "
        f"cache): {warm}"
    )


if __name__ == "__main__":
    main()
