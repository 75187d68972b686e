"""`rnnlab warm-up`: let every installed backend that prepares itself (compiles kernels) do it
now, for the given cells, dtypes, losses and targets, so that later runs start at once.

For each backend with a warm-up of its own (``Backend.warm_up``) and each combination it runs,
the command builds the plan a default experiment with that cell, dtype, loss and target would
train (one layer, the default optimizer and clipping), then asks the backend to get ready for it
exactly as a run does: ``Backend.warm_up`` and the epoch runner. What a backend compiles is said
as it happens (``rnnlab.plugin.preparing``) and listed at the end with its time; a combination
already compiled (its kernels cached on disk) costs a second or less.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import click
from rich.table import Table

from ..errors import ConfigError
from ..experiment.schema import ModelConfig, TrainConfig
from ..registry.manager import Registry
from ..registry.progress import listening
from ..specs import DTYPES, LOSSES, TARGETS, Backend
from ..training.loop import epoch_runner
from ..training.session import EpochPlan, runs_cell
from .common import debug_option, out_console, plugin_option, warn_failures


@dataclass(frozen=True)
class Selection:
    """What to compile: every combination of these (threads: each count in ``threads``)."""

    cells: tuple[str, ...]
    dtypes: tuple[str, ...]
    losses: tuple[str, ...]
    targets: tuple[str, ...]
    threads: tuple[int, ...]


@dataclass(frozen=True)
class Done:
    """One combination a backend got ready for: what it compiled (empty: nothing, its kernels
    were compiled or cached) and the seconds it took in all."""

    backend: str
    plan: EpochPlan
    compiled: tuple[tuple[str, float], ...]
    seconds: float


def split(value: str | None, option: str, valid) -> tuple[str, ...] | None:
    """``"a,b"`` as a tuple of names, each in ``valid`` (None: every name given is accepted)."""
    if value is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    wrong = [n for n in names if valid is not None and n not in valid]
    if wrong or not names:
        raise ConfigError(
            f"{option} {value!r}: {', '.join(wrong) or 'nothing given'} is not one of "
            f"{', '.join(valid)} (a comma-separated list)"
        )
    return names


def prepares(backend) -> bool:
    """Whether the backend has a warm-up of its own (something to compile)."""
    return getattr(type(backend), "warm_up", Backend.warm_up) is not Backend.warm_up


def plans(backend, registry: Registry, choice: Selection):
    """The plans of ``choice`` the backend runs: a default experiment's model and training
    settings with each cell, dtype, loss, target and thread count."""
    for cell in choice.cells:
        spec = registry.cell(cell)
        if not runs_cell(backend, spec):
            continue
        for dtype in choice.dtypes:
            if dtype not in getattr(backend, "dtypes", DTYPES):
                continue
            model = ModelConfig(cell=cell, dtype=dtype, nonlinearity=spec.default_nonlinearity)
            for threads in choice.threads:
                train = replace(TrainConfig(), backend=backend.name, threads=threads)
                for loss in choice.losses:
                    for target in choice.targets:
                        yield EpochPlan(model, train, loss, target)


def warm_up_all(registry: Registry, choice: Selection, backends, say) -> list[Done]:
    """Every plan of ``choice`` on every backend named in ``backends`` (None: every available
    one) that prepares itself; ``say(message)`` hears what each compiles as it goes."""
    out = []
    for name, spec in registry.backends.items():
        if (backends is not None and name not in backends) or spec.unavailable():
            continue
        backend = spec.load()
        if not prepares(backend):
            continue
        for plan in plans(backend, registry, choice):
            t0 = time.perf_counter()
            with listening(say, f"backend {name!r}") as compiled:
                backend.warm_up(plan)
                epoch_runner(backend, plan)
            out.append(Done(name, plan, tuple(compiled), time.perf_counter() - t0))
    return out


def done_table(rows: list[Done]) -> Table:
    table = Table(title="warm-up: what each backend compiled (nothing: already compiled)")
    for column in ("backend", "cell", "dtype", "loss", "target", "threads"):
        table.add_column(column)
    table.add_column("compiled")
    table.add_column("seconds", justify="right")
    for row in rows:
        p = row.plan
        what = "; ".join(f"{task} ({seconds:.1f} s)" for task, seconds in row.compiled)
        threads = str(p.train.threads) if p.train.threads else "auto"
        table.add_row(
            row.backend,
            p.model.cell,
            p.model.dtype,
            p.loss,
            p.target,
            threads,
            what or "nothing",
            f"{row.seconds:.1f}",
        )
    return table


@click.command("warm-up")
@click.option("--cells", help="Comma-separated cells (default: rnn,lstm,gru).")
@click.option("--dtype", "dtypes", help="Comma-separated dtypes (default: float64).")
@click.option("--loss", "losses", help="Comma-separated losses (default: mse,xent).")
@click.option("--target", "targets", help="Comma-separated targets (default: last,every).")
@click.option(
    "--threads",
    help="Comma-separated thread counts to compile for (default: 1, and every core when the "
    "machine has more than one: an automatic thread choice uses them once compiled).",
)
@click.option("--backend", "backends", help="Comma-separated backends (default: every one).")
@plugin_option
@debug_option
def warm_up(cells, dtypes, losses, targets, threads, backends, plugin_paths):
    """Compile every installed backend's kernels for the given cells, dtypes, losses and
    targets now, once per machine, so that later runs start without waiting: for users and CI
    images that want to pay once. A combination already compiled costs about a second."""
    registry = Registry(plugin_paths)
    warn_failures(registry)
    cores = os.cpu_count() or 1
    counts = threads if threads is not None else ("1" if cores == 1 else f"1,{cores}")
    try:
        thread_counts = tuple(dict.fromkeys(int(n) for n in counts.split(",") if n.strip()))
    except ValueError:
        thread_counts = ()
    if not thread_counts or min(thread_counts) < 1:
        raise ConfigError(f"--threads {counts!r}: give thread counts >= 1, comma-separated")
    choice = Selection(
        cells=split(cells or "rnn,lstm,gru", "--cells", sorted(registry.cells)),
        dtypes=split(dtypes or "float64", "--dtype", DTYPES),
        losses=split(losses or "mse,xent", "--loss", LOSSES),
        targets=split(targets or "last,every", "--target", TARGETS),
        threads=thread_counts,
    )
    chosen = split(backends, "--backend", sorted(registry.backends))
    console = out_console()
    rows = warm_up_all(registry, choice, chosen, lambda m: console.print(m, highlight=False))
    if not rows:
        console.print("no installed backend has anything to compile for these choices")
        return
    console.print(done_table(rows))
    total = sum(r.seconds for r in rows)
    plural = "s" if len(rows) != 1 else ""
    console.print(f"{len(rows)} combination{plural} ready in {total:.1f} s", highlight=False)
