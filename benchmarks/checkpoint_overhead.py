"""What checkpoints cost: the same experiment with a checkpoint after every epoch (the default)
and with none until the end, in one process, alternating to share the machine's noise.

    python benchmarks/checkpoint_overhead.py [EXPERIMENT] [--epochs N] [--repeats R]

Prints the median wall time per epoch of each and the difference (one checkpoint write: an
.npz of parameters, optimizer state and best parameters, fsync'ed and renamed).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rnnlab.cli.common import load_experiment
from rnnlab.training.run import run_experiment


def seconds_per_epoch(config: str, epochs: int, sets: list[str], out: Path) -> float:
    exp, registry = load_experiment(config, [f"train.epochs={epochs}", *sets])
    t0 = time.perf_counter()
    summary, _ = run_experiment(exp, registry, out_root=out)
    return (time.perf_counter() - t0) / epochs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "config", nargs="?", default=str(Path(__file__).parents[1] / "experiments" / "sine.toml")
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    variants = {
        "every epoch": ["train.checkpoint_every=1"],
        "only at the end": ["train.checkpoint_every=0", "train.checkpoint_seconds=0"],
    }
    times = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(dir=".") as tmp:  # on the disk runs/ would be on
        for _ in range(args.repeats):
            for name, sets in variants.items():
                times[name].append(seconds_per_epoch(args.config, args.epochs, sets, Path(tmp)))
    for name, ts in times.items():
        print(
            f"checkpoint {name:16s} {statistics.median(ts) * 1000:8.2f} ms per epoch "
            f"(median of {args.repeats} runs of {args.epochs} epochs)"
        )
    diff = statistics.median(times["every epoch"]) - statistics.median(times["only at the end"])
    print(f"difference: {diff * 1000:.2f} ms per epoch")


if __name__ == "__main__":
    main()
