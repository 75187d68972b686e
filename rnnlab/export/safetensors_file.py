"""The safetensors file `rnnlab export --format safetensors` writes: PyTorch's parameter names,
and in its metadata the run's resolved experiment, loss and target, so that it loads back as a
run (:class:`rnnlab.api.WeightsRun`); and importing a format's optional dependency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import RnnlabError

CONFIG_KEY, LOSS_KEY, TARGET_KEY = "rnnlab.experiment.config", "rnnlab.loss", "rnnlab.target"
"""safetensors metadata: the run's resolved config.toml (TOML text), loss and target."""


def need(module: str, extra: str):
    """Import an optional dependency, or one clear RnnlabError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RnnlabError(
            f"this needs the {module!r} package: pip install 'rnnlab[{extra}]'"
        ) from None


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
