"""What the diagnostics cost (rnnlab.training.diagnostics): recurrent health (spectral radii,
saturation,
forget gate) and the gradient flow, each against one epoch of the loop (training + validation
loss), timed alternately in one process so that they share the machine's noise.

    python benchmarks/diagnostics_overhead.py [EXPERIMENT ...] [--backend B] [--repeats R]
                                             [--set TABLE.KEY=VALUE ...]

Default: the article's case (experiments/sine.toml: rnn, H=32, windows of 10). Prints, per
experiment, the median milliseconds of an epoch, of the health record and of the gradient flow,
each as a share of the epoch, and what they add per epoch at the experiment's
``diagnostics.health_every`` and ``diagnostics.every``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rnnlab.cli.common import load_experiment
from rnnlab.nn.optim import learning_rate
from rnnlab.store.checkpoint import EpochPosition
from rnnlab.training.diagnostics import Diagnostics, gradient_norm_by_step, health
from rnnlab.training.loop import RunInfo, split_loss, train_epoch, warm_up
from rnnlab.training.session import prepare

ROOT = Path(__file__).resolve().parents[1]


def measure(config: str, backend: str, repeats: int, sets: list[str]) -> dict[str, list[float]]:
    exp, registry = load_experiment(config, [f"train.backend={backend}", *sets])
    session = prepare(exp, registry)
    runner = warm_up(session, RunInfo(exp, session.dataset, session.model))
    diag = Diagnostics(exp.diagnostics, session.model, session.dataset, exp.experiment.seed)
    sample = diag.sample()
    n = len(session.dataset.splits["train"])
    times = {"epoch": [], "health": [], "gradient flow": []}
    for rep in range(repeats + 1):  # the first round warms caches and is not counted
        position = EpochPosition(session.rngs["shuffle"].permutation(n), [])
        t0 = time.perf_counter()
        train_epoch(session, runner, position, learning_rate(exp.train, rep))
        split_loss(session.model, session.dataset, "val")
        t1 = time.perf_counter()
        health(session.model, diag.sample())
        t2 = time.perf_counter()
        gradient_norm_by_step(session.model, sample)
        t3 = time.perf_counter()
        if rep:
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                times[key].append(dt)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="*", default=[str(ROOT / "experiments" / "sine.toml")])
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()
    for config in args.configs:
        times = measure(config, args.backend, args.repeats, args.sets)
        epoch = statistics.median(times["epoch"])
        print(f"{Path(config).name} on {args.backend} (median of {args.repeats}):")
        for key, ts in times.items():
            ms = statistics.median(ts) * 1000
            share = "" if key == "epoch" else f"  {ms / 1000 / epoch:6.1%} of an epoch"
            print(
                f"  {key:14s} {ms:9.2f} ms (range {min(ts) * 1000:.2f}-{max(ts) * 1000:.2f}){share}"
            )
        exp, _ = load_experiment(config, args.sets)
        k_health, k_flow = exp.diagnostics.health_every, exp.diagnostics.every
        added = sum(
            statistics.median(times[key]) / k
            for key, k in (("health", k_health), ("gradient flow", k_flow))
            if k
        )
        print(
            f"  per epoch with health_every = {k_health}, every = {k_flow}: "
            f"{added * 1000:.2f} ms, {added / epoch:.1%} of an epoch"
        )


if __name__ == "__main__":
    main()
