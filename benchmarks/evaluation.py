"""Evaluation speed on the numba backend: the validation loss (``split_loss(..., "val")``, run
after every epoch) and the final metrics on every split (``rnnlab.training.loop.evaluate``), through
the compiled forward pass (plugins/rnnlab_numba/forward.py) against the core composing numba's
layer kernels (what evaluation did before it), on the same trained-from-nothing parameters.
Interleaved, best of the repeats; the values must agree (printed).

    python benchmarks/evaluation.py                                # adding_lstm, chargen
    python benchmarks/evaluation.py experiments/chargen_corpus.toml --set model.cell=rnn \\
        --set model.hidden_size=100 --set task.window=25 --set model.dtype=float64
    NUMBA_NUM_THREADS=1 python benchmarks/evaluation.py            # one thread
"""

from __future__ import annotations

import argparse
import time

from rnnlab.cli.common import load_experiment
from rnnlab.training.loop import evaluate, split_loss
from rnnlab.training.session import prepare
from rnnlab_numba.backend import NumbaBackend

DEFAULT = ("experiments/adding_lstm.toml", "experiments/chargen.toml")


def best(f, repeats: int):
    """The shortest of ``repeats`` timed calls, and the last value."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = f()
        times.append(time.perf_counter() - t0)
    return min(times), value


def measure(path: str, sets: list[str], repeats: int) -> None:
    exp, registry = load_experiment(path, ["train.backend=numba", *sets])
    session = prepare(exp, registry)
    t0 = time.perf_counter()
    session.backend.warm_up(session.plan)
    print(f"{path}: warm-up {time.perf_counter() - t0:.2f} s")
    compiled = NumbaBackend.forward_features
    times = {"composed": [], "compiled": []}
    for _ in range(repeats):
        for name in times:
            NumbaBackend.forward_features = compiled if name == "compiled" else frozenset()
            session.model._compiled = None  # ask the backend again
            val = best(lambda: split_loss(session.model, session.dataset, "val"), 3)
            final = best(lambda: evaluate(session), 1)
            times[name].append((val, final))
    NumbaBackend.forward_features = compiled
    for name, runs in times.items():
        tv, v = min((r[0] for r in runs), key=lambda pair: pair[0])
        te, metrics = min((r[1] for r in runs), key=lambda pair: pair[0])
        print(
            f"  {name:8s} val loss {tv * 1e3:9.2f} ms  evaluate {te * 1e3:9.1f} ms"
            f"   (val {v!r}, test {metrics['test']['loss']!r})"
        )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("experiments", nargs="*", default=DEFAULT)
    ap.add_argument("--set", action="append", default=[], help="a config override, as in run")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    for path in args.experiments:
        measure(path, args.set, args.repeats)


if __name__ == "__main__":
    main()
