"""A run's trained model in other tools' formats: ONNX (run by onnxruntime and others) and
safetensors (PyTorch's names, loaded by ``safetensors.torch.load_file`` + ``load_state_dict``).

    rnnlab.export("runs/sine-...", "onnx", "model.onnx")
    rnnlab.export("runs/sine-...", "safetensors", "model.safetensors")

What `rnnlab export` does. Each format needs its optional extra (``rnnlab[onnx]``,
``rnnlab[safetensors]``); a missing one is one clear error naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tomli_w

from ..errors import RnnlabError

FORMATS = ("onnx", "safetensors")
CONFIG_KEY, LOSS_KEY, TARGET_KEY = "rnnlab.experiment.config", "rnnlab.loss", "rnnlab.target"
"""safetensors metadata: the run's resolved config.toml (TOML text), loss and target."""

__all__ = ["FORMATS", "export", "read_safetensors"]


def need(module: str, extra: str):
    """Import an optional dependency, or one clear RnnlabError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RnnlabError(
            f"this needs the {module!r} package: pip install 'rnnlab[{extra}]'"
        ) from None


def export(run, format: str, out: str | os.PathLike[str]) -> Path:
    """Write ``run``'s trained model (a run directory, or a :class:`rnnlab.Run`) to ``out`` in
    ``format`` ("onnx" or "safetensors"); return the path written."""
    from ..api import Run

    if format not in FORMATS:
        raise RnnlabError(f"unknown export format {format!r} (valid: {', '.join(FORMATS)})")
    run = run if isinstance(run, Run) else Run(run)
    out = Path(out)
    if out.parent and not out.parent.is_dir():
        raise RnnlabError(f"{out}: its folder {out.parent} does not exist")
    if format == "onnx":
        write_onnx(run, out)
    else:
        write_safetensors(run, out)
    return out


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


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict, dict]:
    """``(params, config, summary)`` of a file written by :func:`export`: the arrays, the run's
    resolved experiment and ``{"loss", "target"}``."""
    import tomllib

    safe_open = need("safetensors", "safetensors").safe_open
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            params = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError) as exc:  # safetensors raises SafetensorError(Exception)
        raise RnnlabError(f"{path}: not a safetensors file ({exc})") from None
    except Exception as exc:
        raise RnnlabError(f"{path}: not a safetensors file ({type(exc).__name__}: {exc})") from None
    if CONFIG_KEY not in metadata:
        raise RnnlabError(
            f"{path}: holds no rnnlab config (only files written by `rnnlab "
            f"export --format safetensors` can be loaded as a run)"
        )
    summary = {
        "status": "exported",
        "loss": metadata.get(LOSS_KEY),
        "target": metadata.get(TARGET_KEY),
    }
    return params, tomllib.loads(metadata[CONFIG_KEY]), json.loads(json.dumps(summary))
