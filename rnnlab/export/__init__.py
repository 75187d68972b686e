"""A run's trained model in other tools' formats: ONNX (run by onnxruntime and others) and
safetensors (PyTorch's names, loaded by ``safetensors.torch.load_file`` + ``load_state_dict``).

    rnnlab.export("runs/sine-...", "onnx", "model.onnx")
    rnnlab.export("runs/sine-...", "safetensors", "model.safetensors")

What `rnnlab export` does. Each format needs its optional extra (``rnnlab[onnx]``,
``rnnlab[safetensors]``); a missing one is one clear error naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tomli_w

from ..errors import RnnlabError
from ..store.lock import holder
from .safetensors_file import CONFIG_KEY, LOSS_KEY, TARGET_KEY, need, read_safetensors

FORMATS = ("onnx", "safetensors")

__all__ = ["FORMATS", "export", "read_safetensors"]


def export(run, format: str, out: str | os.PathLike[str]) -> Path:
    """Write ``run``'s trained model (a run directory, or a :class:`rnnlab.Run`) to ``out`` in
    ``format`` ("onnx" or "safetensors"); return the path written."""
    from ..api import Run

    if format not in FORMATS:
        raise RnnlabError(f"unknown export format {format!r} (valid: {', '.join(FORMATS)})")
    run = run if isinstance(run, Run) else Run(run)
    check_not_being_written(run.dir)
    out = Path(out)
    if out.parent and not out.parent.is_dir():
        raise RnnlabError(f"{out}: its folder {out.parent} does not exist")
    if format == "onnx":
        write_onnx(run, out)
    else:
        write_safetensors(run, out)
    return out


def check_not_being_written(path: Path) -> None:
    """Refuse a run directory that a live process writes (a run or a resume in progress): its
    parameters are those of an earlier point and are about to change."""
    if not Path(path).is_dir():
        return  # a safetensors file
    alive, record = holder(path)
    if alive:
        who = record.describe() if record is not None else "another process"
        raise RnnlabError(
            f"{path}: the run is being written by {who} (a run or resume in progress); its "
            f"parameters are not final: export it once that process ends"
        )


def write_onnx(run, out: Path) -> None:
    need("onnx", "onnx")
    from .onnx_graph import build_onnx

    model, cfg = run.model, run.config["model"]
    graph = build_onnx(
        run.params,
        cell=cfg["cell"],
        layers=cfg["layers"],
        hidden_size=cfg["hidden_size"],
        bidirectional=bool(cfg.get("bidirectional", False)),
        nonlinearity=cfg.get("nonlinearity", "tanh"),
        target=model.target,
        name=run.dir.name,
    )
    out.write_bytes(graph.SerializeToString())


def write_safetensors(run, out: Path) -> None:
    numpy_st = need("safetensors.numpy", "safetensors")
    model = run.model
    tensors = {k: np.ascontiguousarray(v) for k, v in run.params.items()}
    metadata = {
        CONFIG_KEY: tomli_w.dumps(run.config),
        LOSS_KEY: model.loss,
        TARGET_KEY: model.target,
        "format": "pt",
    }
    numpy_st.save_file(tensors, str(out), metadata=metadata)
