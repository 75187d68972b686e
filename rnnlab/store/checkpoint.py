"""Checkpoints: everything needed to continue a run so that it ends bit for bit as if it had
never stopped.

A checkpoint holds the parameters, the optimizer state, the state of every random generator,
the number of finished epochs, the best-validation tracking, where the history so far is, each
plugin's
own state (``checkpoint_state`` hook) and, when it was written in the middle of an epoch, that
epoch's shuffle order, how many of its batches are done and their losses. It also records the
resolved experiment and a fingerprint of it, and a digest of the data, so that a resume can
refuse to continue a different experiment.

On disk it is one ``.npz`` file (no pickles): arrays under ``params:NAME``, ``best:NAME``,
``optim:NAME:SLOT`` and ``order``, and a ``meta`` member holding UTF-8 JSON. The zip format's
CRC-32 of every member catches a truncated or corrupted file.

The history (one record per finished epoch) is not copied into each checkpoint, which would make
a run's checkpoint writing grow with the square of its epochs: the checkpoint records how many
lines of the run's metrics.jsonl it was written after and the sha256 of those lines
(:class:`HistoryRef`), and a resume reads them back from there. Checkpoints of format 1 hold the
history itself and still load.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RnnlabError

FORMAT = 2
FORMATS_READ = (1, 2)
# What reading a damaged .npz may raise: zipfile and numpy meet bytes they cannot parse (a torn
# header, a spliced version or compression field, an absurd size)
DAMAGED = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
    NotImplementedError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
)

# Keys that may differ between a checkpoint and the experiment that resumes it: they change when
# or how long training runs, not the numbers it computes (train.threads: a backend's results are
# the same whatever the thread count). train.epochs joins them only with a constant learning rate
# (a cosine schedule depends on the total number of epochs).
FREE_KEYS = ("train.checkpoint_every", "train.checkpoint_seconds", "train.threads")
EPOCHS_KEY = "train.epochs"
# Keys added to the experiment after checkpoints were first written, with the value their absence
# means: a run recorded before a key existed resumes as the same experiment.
ADDED_KEYS = {
    "train.bucket_by_length": False,
    "model.bidirectional": False,
    "model.dropout": 0.0,
    "train.threads": 0,
}


@dataclass
class EpochPosition:
    """Where an unfinished epoch stopped: its shuffle order and the losses of its done batches."""

    order: np.ndarray
    losses: list[float]

    @property
    def batches_done(self) -> int:
        return len(self.losses)


@dataclass
class TrainState:
    """The training loop's own state, besides parameters, optimizer and generators."""

    epoch: int = 0  # finished epochs
    history: list[dict] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = 0
    best_params: dict[str, np.ndarray] | None = None
    position: EpochPosition | None = None  # set when the checkpoint is mid-epoch
    plugin_state: dict[str, dict] = field(default_factory=dict)  # plugin name -> its state


@dataclass(frozen=True)
class HistoryRef:
    """Where a checkpoint's history is: the first ``lines`` lines of the run's metrics.jsonl,
    whose bytes have the sha256 ``digest``."""

    lines: int
    digest: str


class HistoryDigest:
    """The sha256 of metrics.jsonl's lines as they are written, for :class:`HistoryRef`."""

    def __init__(self):
        self.hash, self.lines = hashlib.sha256(), 0

    def add(self, line: bytes) -> None:
        self.hash.update(line)
        self.lines += 1

    def ref(self) -> HistoryRef:
        return HistoryRef(self.lines, self.hash.hexdigest())


@dataclass
class Checkpoint:
    """One checkpoint, in memory. With ``history`` (a :class:`HistoryRef`) the state's own
    history is not written: it is in the run's metrics.jsonl."""

    state: TrainState
    params: dict[str, np.ndarray]
    optimizer: dict  # Optimizer.state_dict()
    generators: dict[str, dict]  # name -> bit_generator.state
    config: dict[str, Any]  # the resolved experiment (Experiment.to_dict())
    data_digest: str
    source: str | None = None  # absolute path of the experiment file the run started from
    history: HistoryRef | None = None


# -- identity of an experiment ---------------------------------------------------------------
def free_keys(config: dict[str, Any]) -> tuple[str, ...]:
    """The keys a resume may change (see FREE_KEYS)."""
    if config.get("train", {}).get("schedule", "constant") == "constant":
        return (*FREE_KEYS, EPOCHS_KEY)
    return FREE_KEYS


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """``{"table.key": value}``, without added keys (ADDED_KEYS) that hold their default."""
    return {
        f"{table}.{key}": value
        for table, values in config.items()
        for key, value in values.items()
        if ADDED_KEYS.get(f"{table}.{key}", ...) != value
    }


def fingerprint(config: dict[str, Any]) -> str:
    """sha256 of the resolved experiment without the keys a resume may change."""
    skip = free_keys(config)
    kept = {k: v for k, v in sorted(_flat(config).items()) if k not in skip}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"table.key: old -> new"`` for every key that differs and is not free to change."""
    a, b = _flat(old), _flat(new)
    skip = set(free_keys(old)) & set(free_keys(new))
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in skip and a.get(key, "<absent>") != b.get(key, "<absent>"):
            out.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    return out


def data_digest(splits) -> str:
    """sha256 over every split's arrays (shape, dtype and bytes; x, y, and lengths when the
    split has them), in split-name order."""
    h = hashlib.sha256()
    for name in sorted(splits):
        split = splits[name]
        lengths = () if getattr(split, "lengths", None) is None else (split.lengths,)
        for arr in (split.x, split.y, *lengths):
            a = np.ascontiguousarray(arr)
            h.update(f"{name}{a.shape}{a.dtype.str}".encode())
            h.update(a.data)
    return h.hexdigest()


# -- on disk ---------------------------------------------------------------------------------
def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    return value


def save(ckpt: Checkpoint, f) -> None:
    """Write ``ckpt`` as an ``.npz`` into the binary file ``f``."""
    s = ckpt.state
    meta = {
        "format": FORMAT,
        "epoch": s.epoch,
        "best_loss": _json_ready(s.best_loss),
        "best_epoch": s.best_epoch,
        "has_best": s.best_params is not None,
        "position": None if s.position is None else {"losses": s.position.losses},
        "optimizer_steps": int(ckpt.optimizer["steps"]),
        "generators": ckpt.generators,
        "config": ckpt.config,
        "fingerprint": fingerprint(ckpt.config),
        "data_digest": ckpt.data_digest,
        "source": ckpt.source,
        "plugin_state": s.plugin_state,
    }
    if ckpt.history is None:
        meta["history"] = s.history
    else:
        meta["history_lines"], meta["history_sha256"] = ckpt.history.lines, ckpt.history.digest
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    arrays.update({f"params:{k}": v for k, v in ckpt.params.items()})
    if s.best_params is not None:
        arrays.update({f"best:{k}": v for k, v in s.best_params.items()})
    for name, slots in ckpt.optimizer["slots"].items():
        arrays.update({f"optim:{name}:{slot}": v for slot, v in slots.items()})
    if s.position is not None:
        arrays["order"] = s.position.order
    np.savez(f, **arrays)


def load(path: Path) -> Checkpoint:
    """Read a checkpoint; a missing, truncated or corrupted file is one clear RnnlabError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}  # reads every member: checks every CRC
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        return _from_parts(meta, arrays)
    except FileNotFoundError:
        raise RnnlabError(
            f"{path}: no checkpoint (the run stopped before writing its first "
            f"one; start it again with `rnnlab run`)"
        ) from None
    except DAMAGED as exc:
        raise RnnlabError(
            f"{path}: truncated or corrupted checkpoint ({type(exc).__name__}: {exc})"
        ) from None


def _from_parts(meta: dict, arrays: dict[str, np.ndarray]) -> Checkpoint:
    if meta.get("format") not in FORMATS_READ:
        raise ValueError(f"unknown checkpoint format {meta.get('format')!r}")

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    slots: dict[str, dict[str, np.ndarray]] = {}
    for key, arr in group("optim:").items():
        name, slot = key.rsplit(":", 1)
        slots.setdefault(name, {})[slot] = arr
    position = None
    if meta["position"] is not None:
        position = EpochPosition(arrays["order"], [float(x) for x in meta["position"]["losses"]])
    history = None
    if "history" not in meta:  # in metrics.jsonl: RunDir.load_checkpoint reads it from there
        history = HistoryRef(int(meta["history_lines"]), str(meta["history_sha256"]))
    state = TrainState(
        epoch=int(meta["epoch"]),
        history=list(meta["history"]) if history is None else [],
        best_loss=float(_from_json(meta["best_loss"])),
        best_epoch=int(meta["best_epoch"]),
        best_params=group("best:") if meta["has_best"] else None,
        position=position,
        plugin_state=_plugin_state(meta.get("plugin_state", {})),
    )
    if fingerprint(meta["config"]) != meta["fingerprint"]:
        raise ValueError("its recorded experiment does not match its fingerprint")
    return Checkpoint(
        state,
        group("params:"),
        {"steps": int(meta["optimizer_steps"]), "slots": slots},
        meta["generators"],
        meta["config"],
        meta["data_digest"],
        meta["source"],
        history,
    )


def _plugin_state(value) -> dict[str, dict]:
    """The plugins' states (absent from checkpoints written before rnnlab kept them)."""
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError("its plugin state is not a table of tables")
    return value
