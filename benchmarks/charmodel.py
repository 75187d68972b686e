"""The char model at min-char-rnn's settings, timed three ways on the same text: rnnlab's
backends through the core's stateful path, and a min-char-rnn NumPy loop (benchmarks/minchar.py).

The experiment: the chargen task in stateful mode (one stream, chunks of ``window = 25``
characters, the state carried from chunk to chunk), an rnn with H = 100, ``batch_size = 1``,
Adagrad with learning rate 0.1, gradients clipped by value to [-5, 5], float64 — min-char-rnn's
settings. The corpus is the source of a few Python standard-library modules read from this
installation (no download; the character count is printed, as it varies a little between Python
versions); one epoch is one pass over the train split (80%).

An rnnlab contender runs ``rnnlab.training.loop.warm_up`` and ``rnnlab.training.loop.train_epoch``
on a session
from ``rnnlab.training.loop.prepare``: exactly what ``rnnlab run`` does for an epoch, so whatever
path
the core picks for a stateful epoch (its own chunk loop,
``rnnlab.training.stateful.stateful_epoch``, or a
backend's runner called with ``chunk_length``) is the one measured; which one ran is reported.
The min-char-rnn loop walks the same characters in the same chunks. Speed is characters (train
targets) per second.
"""

from __future__ import annotations

import time

import numpy as np
from backends import has_threads_setting, parse_contender
from minchar import MinCharRnn

from rnnlab.experiment.config import build_experiment
from rnnlab.registry.manager import Registry
from rnnlab.store.checkpoint import EpochPosition
from rnnlab.training.loop import RunInfo, train_epoch, warm_up
from rnnlab.training.session import prepare

# the corpus: the first five modules of experiments/chargen_corpus.toml (about 133,000
# characters on Python 3.11, so about 107,000 train characters per epoch)
MODULES = ("textwrap", "heapq", "contextlib", "functools", "calendar")
WINDOW, HIDDEN, LEARNING_RATE, CLIP = 25, 100, 0.1, 5.0


def experiment(backend: str, threads: int | None, modules=MODULES, dtype: str = "float64") -> dict:
    """The raw experiment tables (as an experiment file would give them)."""
    train = {
        "backend": backend,
        "epochs": 1,
        "batch_size": 1,
        "optimizer": "adagrad",
        "learning_rate": LEARNING_RATE,
        "grad_clip": "value",
        "grad_clip_value": CLIP,
    }
    if threads is not None and has_threads_setting():
        train["threads"] = threads
    return {
        "experiment": {"name": "char_minchar", "seed": 0},
        "task": {
            "name": "chargen",
            "stdlib_modules": list(modules),
            "mode": "stateful",
            "window": WINDOW,
        },
        "model": {"cell": "rnn", "hidden_size": HIDDEN, "layers": 1, "dtype": dtype},
        "train": train,
    }


class CountingRunner:
    """The backend's epoch runner, noting whether the core called it."""

    def __init__(self, runner):
        self.runner, self.calls = runner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.runner(*args, **kwargs)


class RnnlabChar:
    """One rnnlab backend on the stateful char experiment, epochs run as the core runs them."""

    def __init__(self, name: str, modules=MODULES, dtype: str = "float64"):
        self.name = name
        backend, threads = parse_contender(name)
        registry = Registry()
        exp = build_experiment(experiment(backend, threads, modules, dtype), registry)
        self.session = prepare(exp, registry)
        self.initial_params = {k: v.copy() for k, v in self.session.model.params.items()}
        info = RunInfo(exp, self.session.dataset, self.session.model)
        t0 = time.perf_counter()
        runner = warm_up(self.session, info)
        self.warmup = time.perf_counter() - t0
        self.runner = None if runner is None else CountingRunner(runner)
        train = self.session.dataset.splits["train"]
        self.chars = train.x.shape[0] * train.x.shape[1]

    @property
    def path(self) -> str:
        if self.runner is not None and self.runner.calls:
            return "the backend's epoch runner (chunk_length)"
        return "the core's chunk loop (rnnlab.training.stateful)"

    def epoch(self, order=None) -> float:
        position = EpochPosition(np.arange(self.session.dataset.splits["train"].x.shape[1]), [])
        t0 = time.perf_counter()
        train_epoch(self.session, self.runner, position, LEARNING_RATE)
        return time.perf_counter() - t0


class MinCharChar:
    """The min-char-rnn loop on the train stream of an rnnlab contender's dataset."""

    name, warmup, path = "min-char-rnn", 0.0, "NumPy, one character at a time"

    def __init__(self, like: RnnlabChar):
        train = like.session.dataset.splits["train"]
        self.inputs = train.x[:, 0].argmax(axis=-1)  # one-hot -> character indices
        self.targets = np.asarray(train.y[:, 0])
        self.chars = len(self.inputs)
        self.net = MinCharRnn(train.x.shape[-1], HIDDEN, LEARNING_RATE, CLIP)

    def epoch(self, order=None) -> float:
        t0 = time.perf_counter()
        self.net.epoch(self.inputs, self.targets, WINDOW)
        return time.perf_counter() - t0


def jax_problem(like: RnnlabChar) -> dict:
    """What a JAX worker needs to train the char model as ``like`` does (benchmarks/jaxmodel.py's
    ``Trainer`` arguments but the variant): its train stream as character indices, its initial
    parameters, chunks of ``WINDOW`` characters, Adagrad after clipping by value."""
    train = like.session.dataset.splits["train"]
    cfg = like.session.experiment.train
    return {
        "spec": {
            "cell": "rnn",
            "hidden_size": HIDDEN,
            "nonlinearity": "tanh",
            "loss": "xent",
            "target": "every",
        },
        "train": {
            "optimizer": "adagrad",
            "learning_rate": LEARNING_RATE,
            "grad_clip": "value",
            "grad_clip_value": CLIP,
            "eps": cfg.eps,
        },
        "params": {k: v.copy() for k, v in like.initial_params.items()},
        "x": train.x[:, 0].argmax(axis=-1),  # one-hot -> character indices
        "y": np.asarray(train.y[:, 0]),
        "batch_size": WINDOW,
        "stateful": True,
        "vocab": train.x.shape[-1],
    }


def contenders(names: list[str], modules=MODULES) -> list:
    """The rnnlab contenders of ``names`` then min-char-rnn, all on the same text (float64)."""
    rnnlab = [RnnlabChar(name, modules) for name in names]
    return [*rnnlab, MinCharChar(rnnlab[0])]
