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
    python benchmarks/backends.py --case 10,32,32,lstm,bi --write-docs bidirectional

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
script a user would write; the cells PyTorch lacks written from their equations in
benchmarks/torchcells.py) is timed with 1 and 2 threads; the column ``torch`` is the thread
setting with the better median (its per-repeat times give the ratios). It is skipped when
torch is not installed.

JAX (benchmarks/jaxmodel.py: ``lax.scan`` over time, ``value_and_grad``, optax with the same
clipping) runs four ways in two child processes (benchmarks/jaxworker.py): the minibatch step
under ``jit`` or the whole epoch under ``jit``, each with XLA's default threads and with one;
the column ``jax`` is the one with the better median, named beside its figure. Compilation is
ahead of time, timed apart and printed below the table. It is skipped when jax or optax is not
installed (``pip install rnnlab[jax]``) or with ``--no-jax``.

A new cell is a new ``Case`` (``cell="lstm"``): the rnnlab contenders take it from the backend
(a backend that does not run the cell shows "-" and a note, e.g. "numba does not run lru"),
PyTorch from ``TORCH_MODULES`` or benchmarks/torchcells.py, JAX from benchmarks/jaxmodel.py. A
bidirectional case (``bidirectional=True``, ``,bi`` on the command line) reads ``[h_n forward ;
h_n reverse]`` of the top layer. ``,adding`` on the command line trains on the adding problem
(two inputs per step, the sum of the two marked values as target; ``data="adding"``) instead
of sine windows.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import statistics
import time
from dataclasses import dataclass

import machine
import numpy as np
import results_page
from rich.console import Console
from rich.table import Table

from rnnlab.cells import cell_spec
from rnnlab.experiment.schema import ModelConfig, TrainConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.nn.optim import Optimizer
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan, runs_cell
from rnnlab_adding.task import sequences as adding_sequences

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
    data: str = "sine"  # sine windows, or "adding": the adding problem

    @property
    def label(self) -> str:
        bi = " bi" if self.bidirectional else ""
        dtype = "" if self.dtype == "float64" else f" {self.dtype}"
        data = "" if self.data == "sine" else f" {self.data}"
        return f"{self.cell}{bi} T={self.T} H={self.H} B={self.B}{dtype}{data}"


CASES = (Case(10, 32, 32), Case(10, 32, 1), Case(10, 128, 32), Case(100, 128, 32))
# the gated cells at the adding experiments' H and B, short and long (numba must stay faster
# than numpy for them too)
CASES += tuple(Case(T, 32, 32, cell) for cell in ("lstm", "gru") for T in (10, 100))
CASES += (Case(10, 32, 32, "lstm", bidirectional=True),)  # both directions
# the cells whose recurrence is linear in h, and long sequences on the adding problem
CASES += tuple(Case(100, 128, 32, cell) for cell in ("mingru", "minlstm", "lru"))
CASES += tuple(Case(1000, 64, 32, cell, data="adding") for cell in ("lstm", "lru"))
DATA = ("sine", "adding")


def parse_case(text: str, dtype: str = "float64") -> Case:
    """``T,H,B[,cell[,bi][,adding]]`` -> Case."""
    parts = text.split(",")
    flags = parts[4:]
    unknown = set(flags) - {"bi", *DATA}
    if unknown:
        raise ValueError(f"unknown case flag(s) {sorted(unknown)} in {text!r} (bi, adding)")
    data = "adding" if "adding" in flags else "sine"
    T, H, B = map(int, parts[:3])
    cell = parts[3] if len(parts) > 3 else "rnn"
    return Case(T, H, B, cell, bidirectional="bi" in flags, dtype=dtype, data=data)


def sine_data(T: int, dtype: str = "float64") -> Split:
    """WINDOWS windows of T values of sin(0.1 k) and the value after each."""
    series = np.sin(0.1 * np.arange(WINDOWS + T)).astype(dtype)
    idx = np.arange(T)[:, None] + np.arange(WINDOWS)[None, :]
    return Split(np.ascontiguousarray(series[idx][..., None]), series[T:][:, None])


def adding_data(T: int, dtype: str = "float64") -> Split:
    """WINDOWS sequences of the adding problem (rnnlab_adding's): ``x [T, WINDOWS, 2]``."""
    split, _ = adding_sequences(WINDOWS, T, np.random.default_rng(3))
    return Split(split.x.astype(dtype), split.y.astype(dtype))


def case_data(case: Case) -> Split:
    if case.data == "adding":
        return adding_data(case.T, case.dtype)
    return sine_data(case.T, case.dtype)


def initial_params(case: Case, input_size: int) -> dict[str, np.ndarray]:
    """The parameters every contender of ``case`` starts from (rnnlab's init, seed 0)."""
    return init_params(plan_for(case).model, Shape(input_size, 1), np.random.default_rng(0))


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
        cell=case.cell,
        hidden_size=case.H,
        bidirectional=case.bidirectional,
        dtype=case.dtype,
        nonlinearity=cell_spec(case.cell).default_nonlinearity,  # as an experiment file's
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
class CannotRun(Exception):
    """A contender that cannot run a case (its message says why, e.g. "numba does not run
    lru")."""


class RnnlabContender:
    """An rnnlab backend through the core: its epoch runner if it has one, else the core loop."""

    def __init__(self, name: str, case: Case, data: Split):
        self.name, self.data = name, data
        backend_name, threads = parse_contender(name)
        self.plan = plan_for(case, threads)
        backend = Registry().backend(backend_name).load()
        if not runs_cell(backend, cell_spec(case.cell)):
            raise CannotRun(f"{backend_name} does not run {case.cell}")
        params = initial_params(case, data.x.shape[-1])
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
    """torch.nn.RNN/LSTM/GRU (or benchmarks/torchcells.py's layers for the cells PyTorch does not
    have) + Linear with autograd, the same initial parameters and optimizer."""

    def __init__(self, case: Case, data: Split, threads: int, params=None):
        import torch

        self.torch, self.threads, self.name = torch, threads, f"torch-{threads}t"
        I = data.x.shape[-1]
        params = params if params is not None else initial_params(case, I)
        dtype = getattr(torch, case.dtype)
        self.bidirectional, self.builtin = case.bidirectional, case.cell in TORCH_MODULES
        if self.builtin:
            module = getattr(torch.nn, TORCH_MODULES[case.cell])
            self.rnn = module(I, case.H, dtype=dtype, bidirectional=case.bidirectional)
        else:
            import torchcells

            nonlinearity = plan_for(case).model.nonlinearity
            self.rnn = torch.nn.ModuleDict(
                {
                    suffix: torchcells.Layer(case.cell, layer_of(params, suffix), nonlinearity)
                    for suffix in ("_l0", "_l0_reverse")[: 2 if case.bidirectional else 1]
                }
            )
        self.head = torch.nn.Linear(case.H * (2 if case.bidirectional else 1), 1, dtype=dtype)
        with torch.no_grad():
            for name, p in self.named_tensors().items():
                p.copy_(torch.from_numpy(params[name]))
        self.params = [*self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)
        self.x, self.y = torch.from_numpy(data.x), torch.from_numpy(data.y)
        self.B, self.warmup = case.B, 0.0
        how = "torch.nn" if self.builtin else "torch ops (benchmarks/torchcells.py)"
        self.path = f"{how}, autograd, {threads} thread(s)"

    def named_tensors(self) -> dict:
        """Every parameter tensor by rnnlab's name."""
        out = {}
        if self.builtin:
            out.update({f"rnn.{n}": p for n, p in self.rnn.named_parameters()})
        else:
            for suffix, layer in self.rnn.items():
                out.update({f"rnn.{n}{suffix}": p for n, p in layer.named_parameters()})
        out.update({f"head.{n}": p for n, p in self.head.named_parameters()})
        return out

    def top(self, x):
        """What the head reads: the last step's output, ``[forward ; reverse]`` when
        bidirectional (the reverse direction's after reading the sequence back)."""
        torch = self.torch
        if self.builtin:
            hs, state = self.rnn(x)
            if self.bidirectional:  # [h_n forward ; h_n reverse] of the top layer
                h_n = state[0] if isinstance(state, tuple) else state
                return torch.cat([h_n[-2], h_n[-1]], dim=-1)
            return hs[-1]
        last = self.rnn["_l0"](x)[-1]
        if self.bidirectional:
            last = torch.cat([last, self.rnn["_l0_reverse"](x.flip(0))[-1]], dim=-1)
        return last

    def loss(self, idx):
        return self.torch.nn.functional.mse_loss(self.head(self.top(self.x[:, idx])), self.y[idx])

    def train_batch(self, idx) -> float:
        loss = self.loss(idx)
        self.opt.zero_grad()
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return loss.detach()

    def epoch(self, order: np.ndarray) -> float:
        torch = self.torch
        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        for start in range(0, len(order), self.B):
            self.train_batch(torch.from_numpy(order[start : start + self.B]))
        return time.perf_counter() - t0


def layer_of(params: dict[str, np.ndarray], suffix: str) -> dict[str, np.ndarray]:
    """One direction of layer 0's tensors keyed as the cell's (``suffix`` "_l0" or
    "_l0_reverse")."""
    return {
        k[4 : -len(suffix)]: v
        for k, v in params.items()
        if k.startswith("rnn.") and k.endswith(suffix)
    }


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


def jax_available() -> bool:
    import jaxworker

    return jaxworker.jax_available()


def jax_problem(case: Case, data: Split, params=None) -> dict:
    """What a JAX worker needs to train ``case`` (benchmarks/jaxmodel.py's ``Trainer``
    arguments but the variant): the same data, initial parameters and optimizer as the rnnlab
    contenders."""
    plan = plan_for(case)
    t = plan.train
    return {
        "spec": {
            "cell": case.cell,
            "hidden_size": case.H,
            "nonlinearity": plan.model.nonlinearity,
            "loss": plan.loss,
            "target": plan.target,
            "bidirectional": case.bidirectional,
        },
        "train": {
            "optimizer": t.optimizer,
            "learning_rate": t.learning_rate,
            "grad_clip": t.grad_clip,
            "grad_clip_value": t.grad_clip_value,
            "beta1": t.beta1,
            "beta2": t.beta2,
            "eps": t.eps,
        },
        "params": params if params is not None else initial_params(case, data.x.shape[-1]),
        "x": data.x,
        "y": data.y,
        "batch_size": case.B,
    }


def contenders(
    case: Case,
    backends: list[str],
    with_torch: bool,
    jax_pool=None,
    unavailable: dict[str, str] | None = None,
) -> list:
    """The contenders of ``case``: the rnnlab ``backends``, PyTorch's thread settings (with
    torch), JAX's variants (with a ``jaxworker.JaxPool``). A backend that does not run the case
    is left out, the reason put in ``unavailable`` (without it, CannotRun is raised)."""
    data = case_data(case)
    out = []
    for name in backends:
        try:
            out.append(RnnlabContender(name, case, data))
        except CannotRun as e:
            if unavailable is None:
                raise
            unavailable[name] = str(e)
    if with_torch:
        out += [TorchContender(case, data, threads) for threads in TORCH_THREADS]
    if jax_pool is not None:
        out += jax_pool.contenders(jax_problem(case, data))
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


def best_jax(seconds: dict[str, list[float]]) -> str | None:
    """The JAX variant and thread setting with the lower median, or None without JAX."""
    names = [n for n in seconds if n.startswith("jax-")]
    return min(names, key=lambda n: statistics.median(seconds[n])) if names else None


def jax_label(name: str) -> str:
    """``jax-epoch-1t`` -> ``epoch, 1t``; ``jax-step`` -> ``step, default threads``."""
    parts = name.split("-")[1:]
    return f"{parts[0]}, {parts[1] if len(parts) > 1 else 'default threads'}"


VARIANT_PREFIXES = ("torch-", "jax-")  # per-setting contenders; their best is "torch" / "jax"


def case_row(case: Case, group: list, times: dict, unavailable: dict | None = None) -> dict:
    seconds = {c.name: times[(case, c.name)] for c in group}
    torch_name, jax_name = best_torch(seconds), best_jax(seconds)
    if torch_name is not None:
        seconds["torch"] = seconds[torch_name]
    if jax_name is not None:
        seconds["jax"] = seconds[jax_name]
    return {
        "case": case.label,
        **dataclasses.asdict(case),
        "seconds": seconds,
        "ms_per_epoch": {n: 1e3 * statistics.median(ts) for n, ts in seconds.items()},
        "spread_ms": {n: [1e3 * min(ts), 1e3 * max(ts)] for n, ts in seconds.items()},
        "warmup_s": {c.name: c.warmup for c in group},
        "path": {c.name: c.path for c in group},
        "torch_threads": torch_name,
        "jax_variant": jax_name,
        "unavailable": dict(unavailable or {}),
    }


def measure(cases, backends: list[str], repeats: int, with_torch: bool, log, jax_pool=None):
    """Every contender on every case, interleaved; one row per case."""
    unavailable = {case: {} for case in cases}
    setups = {
        case: contenders(case, backends, with_torch, jax_pool, unavailable[case]) for case in cases
    }
    for case in cases:
        for reason in unavailable[case].values():
            log(f"{case.label}: {reason}")
    rng = np.random.default_rng(1)
    times = interleave(setups, repeats, lambda case: rng.permutation(WINDOWS), log)
    return [case_row(case, setups[case], times, unavailable[case]) for case in cases]


def ratios(row: dict, fast: str) -> dict[str, dict]:
    """``fast``'s speed-up over every other contender of the row (torch, jax: the best
    setting); {} when ``fast`` did not run the row."""
    s = row["seconds"]
    if fast not in s:
        return {}
    return {n: ratio(s[n], s[fast]) for n in s if n != fast and not n.startswith(VARIANT_PREFIXES)}


def show_ratio(r: dict) -> str:
    return f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"


def table(rows: list[dict], backends: list[str]) -> Table:
    dtypes = sorted({row["dtype"] for row in rows})
    t = Table(
        title=f"ms per training epoch (median over repeats; {', '.join(dtypes)}; "
        f"{WINDOWS} sequences); ratios: median (min-max) of per-repeat ratios"
    )
    t.add_column("case")
    extra = [n for n in ("torch", "jax") if any(n in row["seconds"] for row in rows)]
    names = [*backends, *extra]
    for name in names:
        t.add_column(name, justify="right")
    last = backends[-1]
    others = [n for n in names if n != last]
    for name in others:
        t.add_column(f"{last} vs {name}", justify="right")
    for row in rows:
        r = ratios(row, last)
        cells = [ms_cell(row, n) for n in names]
        t.add_row(row["case"], *cells, *(show_ratio(r[n]) if n in r else "-" for n in others))
    return t


def ms_cell(row: dict, name: str) -> str:
    """A contender's median ms per epoch, with the setting that gave it (torch: threads; jax:
    variant and threads); "-" when it did not run the row."""
    if name not in row["ms_per_epoch"]:
        return "-"
    text = f"{row['ms_per_epoch'][name]:.1f}"
    if name == "torch":
        return f"{text} ({row['torch_threads'][6:]})"
    if name == "jax":
        return f"{text} ({jax_label(row['jax_variant'])})"
    return text


def jax_pool_if(wanted: bool):
    """A ``jaxworker.JaxPool`` (its workers stopped on leaving the block) when ``wanted``, else
    a block giving None."""
    if not wanted:
        return contextlib.nullcontext()
    import jaxworker

    return jaxworker.JaxPool()


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


def row_notes(rows: list[dict], backends: list[str]) -> list[str]:
    """The lines under the table: warm-up, how each contender ran, what could not run, and
    JAX's compile times."""
    lines = []
    row = rows[0]
    warm = ", ".join(f"{n} {row['warmup_s'][n]:.2f} s" for n in backends if n in row["warmup_s"])
    if warm:
        lines.append(
            f"warm-up before the first epoch (excluded above; numba compiles or loads its "
            f"cache), {row['case']}: {warm}"
        )
    for row in rows:
        shown = [*backends, row["jax_variant"]]  # the JAX variant in the table
        paths = ", ".join(f"{n} ({p})" for n, p in row["path"].items() if n in shown)
        lines.append(f"path, {row['case']}: {paths or '-'}")
        lines += [f"{row['case']}: {reason}" for reason in row["unavailable"].values()]
        jax = {n: s for n, s in row["warmup_s"].items() if n.startswith("jax-")}
        if jax:
            lines.append(
                f"jax compile (ahead of time, excluded above), {row['case']}: "
                + ", ".join(f"{n} {s:.2f} s" for n, s in jax.items())
            )
    return lines


def print_header(console: Console, info: dict) -> None:
    for line in machine.header_lines(info):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def show_and_write(
    console: Console,
    table: Table,
    lines,
    info: dict,
    as_markdown: bool,
    block: str | None = None,
    box=(),
) -> None:
    """Print ``table`` (as Markdown when asked), the ``lines`` under it and the machine header;
    with ``block``, also write table and lines into that block of the speed page, ``box``
    added to its "how this table was measured" box."""
    emit(console, table, as_markdown)
    for line in lines:
        console.print(line, highlight=False, markup=False)
    print_header(console, info)
    if block:
        figures = "\n\n".join([markdown(table), *lines])
        page = results_page.write_block(block, figures, info, notes=box)
        console.print(f"wrote block {block!r} of {page}", highlight=False, markup=False)


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
    ap.add_argument("--no-jax", action="store_true", help="skip JAX even if installed")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument(
        "--write-docs",
        metavar="BLOCK",
        help="also write the table and how it was measured into the block BLOCK of "
        "docs/results/speed.md",
    )
    args = ap.parse_args(argv)
    dtypes = args.dtype or ["float64"]
    try:
        base = tuple(parse_case(c) for c in args.case) if args.case else CASES
    except ValueError as e:
        ap.error(str(e))
    cases = tuple(dataclasses.replace(c, dtype=d) for c in base for d in dtypes)
    if args.write_docs:  # the block exists: fail before measuring
        try:
            results_page.replace_block(results_page.PAGE.read_text(), args.write_docs, "")
        except results_page.NoBlock as e:
            ap.error(str(e))
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
    with_jax = not args.no_jax and args.repeats > 0 and jax_available()
    if not with_jax and not args.no_jax and args.repeats > 0:
        log("jax or optax is not installed (pip install rnnlab[jax]): JAX is skipped")
    with jax_pool_if(with_jax) as pool:
        info = results_page.record(machine.describe(with_torch, pool))
        if machine.idle_warning(info):
            log(machine.idle_warning(info))
        out: dict = {"machine": info}
        if args.repeats > 0:
            out["rows"] = measure(cases, backends, args.repeats, with_torch, log, pool)
    if args.compile:
        import compile_times

        out["compile"] = compile_times.measure(args.dtype or list(DTYPES), log)
    machine.finish(info)
    if args.write_docs and "rows" in out:
        notes = row_notes(out["rows"], backends)
        figures = "\n\n".join([markdown(table(out["rows"], backends)), *notes])
        repeats = [f"**Repeats:** {args.repeats}, interleaved"]
        page = results_page.write_block(args.write_docs, figures, info, notes=repeats)
        log(f"wrote block {args.write_docs!r} of {page}")
    if args.json:
        print(json.dumps(out, indent=2))
        return
    if "rows" in out:
        emit(console, table(out["rows"], backends), args.markdown)
        for line in row_notes(out["rows"], backends):
            log(line)
    if "compile" in out:
        import compile_times

        compile_times.show(console, out["compile"], args.markdown)
    print_header(console, info)


if __name__ == "__main__":
    main()
