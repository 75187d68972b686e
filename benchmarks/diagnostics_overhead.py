"""What the diagnostics cost (rnnlab.training.diagnostics): recurrent health (spectral radii,
saturation, forget gate) and the gradient flow, each against one epoch of the loop (training +
validation loss). Every case is prepared first; then each repeat runs, for every case in turn,
an epoch, a health record and a gradient flow, so that they share the machine's noise.

    python benchmarks/diagnostics_overhead.py                  # the default cases below
    python benchmarks/diagnostics_overhead.py experiments/adding_gru.toml --backend numba
    python benchmarks/diagnostics_overhead.py --repeats 10 --write-docs   # docs/results/speed.md

Default cases: the sine task (experiments/sine.toml: rnn, H=32, windows of 10) on numba and on
numpy, and the adding problem at T = 100 (adding_rnn.toml, adding_lstm.toml) on numba. With
EXPERIMENT files, each of them on each ``--backend`` (default numba). Prints, per case, the
median milliseconds of an epoch, of the health record and of the gradient flow, each as a share
of the epoch, and what they add per epoch at the experiment's ``diagnostics.health_every`` and
``diagnostics.every``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import backends
import machine
import results_page
from rich.table import Table

from rnnlab.cli.common import load_experiment
from rnnlab.nn.optim import learning_rate
from rnnlab.store.checkpoint import EpochPosition
from rnnlab.training.diagnostics import Diagnostics, gradient_norm_by_step, health
from rnnlab.training.loop import RunInfo, split_loss, train_epoch, warm_up
from rnnlab.training.session import prepare

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = (
    ("experiments/sine.toml", "numba"),
    ("experiments/sine.toml", "numpy"),
    ("experiments/adding_rnn.toml", "numba"),
    ("experiments/adding_lstm.toml", "numba"),
)
PARTS = ("epoch", "health", "gradient flow")


@dataclass
class Case:
    """One experiment on one backend, prepared: its session, runner and diagnostics."""

    config: str
    backend: str
    sets: tuple[str, ...] = ()

    def prepare(self) -> None:
        path = Path(self.config) if Path(self.config).exists() else ROOT / self.config
        exp, registry = load_experiment(str(path), [f"train.backend={self.backend}", *self.sets])
        self.exp, self.session = exp, prepare(exp, registry)
        model = self.session.model
        self.runner = warm_up(self.session, RunInfo(exp, self.session.dataset, model))
        self.diag = Diagnostics(exp.diagnostics, model, self.session.dataset, exp.experiment.seed)
        self.sample = self.diag.sample()
        self.times: dict[str, list[float]] = {part: [] for part in PARTS}
        self.rounds = 0

    @property
    def label(self) -> str:
        cell, H = self.exp.model.cell, self.exp.model.hidden_size
        return f"{Path(self.config).name} ({cell}, H={H}) on {self.backend}"

    def once(self, keep: bool) -> None:
        """An epoch, a health record and a gradient flow, timed (kept when ``keep``)."""
        s = self.session
        n = len(s.dataset.splits["train"])
        position = EpochPosition(s.rngs["shuffle"].permutation(n), [])
        t0 = time.perf_counter()
        train_epoch(s, self.runner, position, learning_rate(self.exp.train, self.rounds))
        split_loss(s.model, s.dataset, "val")
        t1 = time.perf_counter()
        health(s.model, self.diag.sample())
        t2 = time.perf_counter()
        gradient_norm_by_step(s.model, self.sample)
        t3 = time.perf_counter()
        self.rounds += 1
        if keep:
            for part, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                self.times[part].append(dt)


def measure(cases: list[Case], repeats: int, log) -> None:
    """Every case prepared, one untimed round each (it warms caches), then ``repeats`` rounds
    of every case in turn."""
    for case in cases:
        case.prepare()
        case.once(keep=False)
    for repeat in range(repeats):
        for case in cases:
            machine.settle()
            case.once(keep=True)
        log(f"repeat {repeat + 1}/{repeats} done")


def table(cases: list[Case], repeats: int) -> Table:
    t = Table(
        title=f"what the diagnostics cost: ms, median (min-max) of {repeats} repeats, and the "
        f"share of an epoch"
    )
    for col in ("case", *PARTS, "added per epoch"):
        t.add_column(col, justify="left" if col == "case" else "right")
    for case in cases:
        epoch = statistics.median(case.times["epoch"])
        cells = []
        for part in PARTS:
            ts = case.times[part]
            text = f"{1e3 * statistics.median(ts):.2f} ({1e3 * min(ts):.2f}-{1e3 * max(ts):.2f})"
            if part != "epoch":
                text += f", {statistics.median(ts) / epoch:.1%}"
            cells.append(text)
        d = case.exp.diagnostics
        added = sum(
            statistics.median(case.times[part]) / k
            for part, k in (("health", d.health_every), ("gradient flow", d.every))
            if k
        )
        cells.append(
            f"{1e3 * added:.2f}, {added / epoch:.1%} (health_every = {d.health_every}, "
            f"every = {d.every})"
        )
        t.add_row(case.label, *cells)
    return t


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", metavar="EXPERIMENT")
    parser.add_argument(
        "--backend",
        action="append",
        help="with EXPERIMENT files: each on these backends (repeatable; default numba)",
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    results_page.add_write_docs(parser, "diagnostics")
    args = parser.parse_args(argv)
    if args.configs:
        pairs = [(c, b) for c in args.configs for b in args.backend or ["numba"]]
    elif args.backend:
        parser.error("--backend goes with EXPERIMENT files (the default cases name theirs)")
    else:
        pairs = list(DEFAULT_CASES)
    cases = [Case(c, b, tuple(args.sets)) for c, b in pairs]
    console = backends.console_for(False)
    log = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    info = results_page.record(machine.describe(with_torch=False))
    if machine.idle_warning(info):
        log(machine.idle_warning(info))
    measure(cases, args.repeats, log)
    machine.finish(info)
    t = table(cases, args.repeats)
    note = (
        "added per epoch: the health record every health_every epochs and the gradient flow "
        "every `every` epochs (0: only at the end of training), as the experiment sets them"
    )
    block = "diagnostics" if args.write_docs else None
    box = [f"**Repeats:** {args.repeats}, interleaved"]
    backends.show_and_write(console, t, [note], info, args.markdown, block, box)


if __name__ == "__main__":
    main()
