"""Will a run fit in memory? What it holds at its peak, against what it may still take.

A run holds its data, its parameters with their gradients, the optimizer's slots, the best
epoch's copy and the temporaries of an update, and while it trains one batch the activations
that backpropagation through time keeps: every step of every sequence of the batch, for every
layer and direction, its gates and states and their gradients. Evaluation runs a whole split in
one forward pass. What it may take is the smaller of the memory the system has available and
the room left under the limit of the process's control group (a container's memory limit,
where the kernel kills a process that passes it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cells import CellSpec
from ..errors import ConfigError
from ..experiment.config import Experiment
from ..nn.model import Shape
from ..specs import Dataset

# copies of the parameters besides the parameters themselves: the gradients, the best epoch's
# copy and the temporaries of clipping, an update and a checkpoint (measured peaks of adam runs
# are about 10 parameter sizes above the data and the activations)
COPIES = 7
SLOTS = {"adam": 2, "adagrad": 1, "sgd": 0}
# What backpropagation through time keeps, per step, sequence, layer and direction, in units of
# hidden_size values: the peak memory of one batch's loss and gradients (training) and of one
# forward pass over a split (evaluation), measured at T = 1000, B = 64-256, H = 64-128,
# float64, on the numpy backend, which keeps the most (numba's fused epoch of rnn, lstm and gru
# kept about half, its forward pass nothing per step), plus one for the temporaries around them
# (at H = 32 the peaks were up to 0.7 above the figure measured at H = 128; 2 layers, both
# directions, stayed below). Complex states count twice; the lru's figures are its resident
# peaks, half again its allocations.
TRAINING_WORDS = {
    "rnn": 6,
    "lstm": 13,
    "gru": 14,
    "mingru": 9,
    "minlstm": 15,
    "indrnn": 7,
    "lru": 26,
}
EVALUATION_WORDS = {
    "rnn": 3,
    "lstm": 11,
    "gru": 9,
    "mingru": 5,
    "minlstm": 10,
    "indrnn": 3,
    "lru": 26,
}
# a cell without a measured figure: per gate block and state value, forward and backward (at
# least the measured figure of every built-in cell above but the lru)
PER_GATE, PER_STATE, EXTRA = 3, 2, 6
CGROUP = Path("/sys/fs/cgroup")
GiB = 2**30
# task options that set how long a sequence is (the sequence length a message names)
LENGTH_OPTION = re.compile(r"length|window|padding|delay")


def state_words(cell: CellSpec) -> int:
    """Values per hidden unit of the cell's state tensors (a complex one counts twice)."""
    return len(cell.state) + len(cell.complex_state)


def step_words(cell: CellSpec) -> tuple[int, int]:
    """``(training, evaluation)``: values kept per step, sequence, layer and direction, in
    units of hidden_size (:data:`TRAINING_WORDS`, else from the cell's gates and state)."""
    train = PER_GATE * cell.gates + PER_STATE * state_words(cell) + EXTRA
    evaluation = cell.gates + state_words(cell)
    return (
        TRAINING_WORDS.get(cell.name, train),
        EVALUATION_WORDS.get(cell.name, evaluation),
    )


@dataclass(frozen=True)
class Footprint:
    """Bytes a run holds: its data (held already when checked), the parameters with their
    gradients, slots and copies, and the larger of a training batch's activations and an
    evaluation's."""

    data: int
    parameters: int
    count: int
    training: int
    evaluation: int
    steps: int = 0  # T of a training batch
    batch: int = 0  # B

    @property
    def to_come(self) -> int:
        """What the run has still to allocate once its data is built."""
        return self.parameters + max(self.training, self.evaluation)


def footprint(exp: Experiment, dataset: Dataset, shape: Shape, cell: CellSpec) -> Footprint:
    """What a run will hold. With T steps, a batch of B sequences (a split of N for
    evaluation), L layers, D directions, H hidden units, k values per step of the cell
    (:func:`step_words`), I inputs, O outputs and s bytes per value (8 float64, 4 float32):
    training ``T B (D L H k + I + O) s``, evaluation ``T N (D L H k' + I + O) s``, the
    parameters ``(1 + COPIES + slots) P s``."""
    m, train = exp.model, exp.train
    size = np.dtype(m.dtype).itemsize
    D = 2 if m.bidirectional else 1
    count = cell.parameter_count(shape.input_size, m.hidden_size, m.layers, D)
    count += shape.output_size * (D * m.hidden_size + 1)  # head
    slots = SLOTS.get(train.optimizer, 1)
    if train.optimizer == "sgd" and train.momentum > 0:
        slots = 1
    k_train, k_eval = step_words(cell)
    units = D * m.layers * m.hidden_size
    edges = shape.input_size + shape.output_size  # the inputs and the head's outputs
    x = dataset.splits["train"].x
    T = dataset.chunk_length or x.shape[0]
    batch = min(train.batch_size, x.shape[1])
    evaluation = max(
        (s.x.shape[0] if not dataset.chunk_length else T) * s.x.shape[1]
        for n, s in dataset.splits.items()
        if n != "train"
    )
    data = sum(
        a.nbytes
        for s in dataset.splits.values()
        for a in (s.x, s.y, s.lengths)
        if isinstance(a, np.ndarray)
    )
    return Footprint(
        data=data,
        parameters=(1 + COPIES + slots) * count * size,
        count=count,
        training=T * batch * (units * k_train + edges) * size,
        evaluation=evaluation * (units * k_eval + edges) * size,
        steps=T,
        batch=batch,
    )


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def cgroup_room() -> tuple[int, int] | None:
    """``(room, limit)``: the bytes left under the tightest memory limit of this process's
    control group and those above it (cgroup v2 ``memory.max`` less ``memory.current``, v1
    ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``); None without a limit."""
    folders: list[Path] = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":  # v2
                folders.append(CGROUP / path.lstrip("/"))
            elif "memory" in controllers.split(","):  # v1
                folders.append(CGROUP / "memory" / path.lstrip("/"))
    except (OSError, ValueError):
        pass
    folders += [CGROUP, CGROUP / "memory"]  # a container sees its own group at the root
    best = None
    seen = set()
    for folder in folders:
        while folder not in seen and (folder == CGROUP or CGROUP in folder.parents):
            seen.add(folder)
            for limit_file, usage_file in (
                ("memory.max", "memory.current"),
                ("memory.limit_in_bytes", "memory.usage_in_bytes"),
            ):
                limit = _read_int(folder / limit_file)
                if limit is None or limit >= 2**60:  # v1 writes "no limit" as a huge number
                    continue
                room = max(0, limit - (_read_int(folder / usage_file) or 0))
                if best is None or room < best[0]:
                    best = (room, limit)
            folder = folder.parent
    return best


def available_memory() -> int | None:
    """The system's available memory (``MemAvailable``), else its physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def room() -> tuple[int, str] | None:
    """The bytes this process may still take, and where the bound comes from."""
    free = available_memory()
    group = cgroup_room()
    if group is not None and (free is None or group[0] < free):
        return group[0], f"its memory limit (cgroup) is {group[1] / GiB:,.2f} GiB"
    if free is None:
        return None
    return free, "that much is available on this machine"


def length_keys(exp: Experiment, other: str) -> list[str]:
    """The task's options that set the sequence length (``task.length``, ``task.window``...),
    without those of the ``other`` splits ("train" or "test")."""
    return [
        f"task.{k}"
        for k, v in exp.task.options.items()
        if LENGTH_OPTION.search(k)
        and isinstance(v, int)
        and not isinstance(v, bool)
        and not k.startswith(("min_", f"{other}_"))
    ]


def keys(exp: Experiment, *names: str) -> str:
    """``a (now 1), b (now 2) or c (now 3)``: the keys to change with their values."""
    tables = {"task": exp.task.options, "train": exp.train, "model": exp.model}
    shown = []
    for name in names:
        table, key = name.split(".", 1)
        where = tables[table]
        value = where.get(key) if isinstance(where, dict) else getattr(where, key, None)
        shown.append(f"{name} (now {value})" if value is not None else name)
    return ", ".join(shown[:-1]) + f" or {shown[-1]}" if len(shown) > 1 else shown[0]


def check_fits_in_memory(
    exp: Experiment, dataset: Dataset, shape: Shape, cell: CellSpec, have=None
) -> None:
    """Refuse a run that would need more memory than it may take: one clear message instead of
    a process the kernel kills. ``have`` is ``(bytes, why)``, default :func:`room`."""
    need = footprint(exp, dataset, shape, cell)
    have = have if have is not None else room()
    if have is None or need.to_come <= have[0]:
        return
    largest = max(
        ("parameters", need.parameters),
        ("training", need.training),
        ("evaluation", need.evaluation),
        key=lambda p: p[1],
    )[0]
    advice = {
        "parameters": keys(exp, "model.hidden_size", "model.layers"),
        "training": keys(
            exp, *length_keys(exp, "test"), "train.batch_size", "model.hidden_size", "model.layers"
        ),
        "evaluation": keys(
            exp,
            *length_keys(exp, "train"),
            *(f"task.{k}" for k in ("val_size", "test_size") if k in exp.task.options),
            "model.hidden_size",
        ),
    }[largest]

    def size(n: int) -> str:
        return f"{n / GiB:,.2f} GiB" if n >= GiB / 10 else f"{n / 2**20:,.1f} MiB"

    raise ConfigError(
        f"this run needs about {size(need.to_come)} besides its data ({size(need.data)}): "
        f"{size(need.parameters)} for {need.count:,} parameters with their gradients, "
        f"optimizer state and copies, {size(need.training)} for a training batch of "
        f"{need.batch} sequences of {need.steps} steps (backpropagation through time keeps "
        f"every step of every layer) and "
        f"{size(need.evaluation)} to evaluate a split at once (the larger counts); only "
        f"{size(have[0])} is free for it ({have[1]}); reduce {advice}",
        source=str(exp.source or ""),
        table="model" if largest == "parameters" else "train",
    )
