"""A cell added in one plugin file, its spec and numpy kernels only, runs on the reference
backend: the conformance kit passes on it, and `rnnlab run --plugin` trains it."""

from pathlib import Path

import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.registry.manager import Registry
from rnnlab.testing import check_backend, gradient_errors
from rnnlab.training.session import prepare
from tests.support.pluginkit import SMALL_SINE, write_experiment

# The whole plugin: a minimal gated unit with a diagonal recurrence in its gate,
#   f_t = sigmoid(W_f x_t + v * h_{t-1} + b),  h_t = f_t * h_{t-1} + (1 - f_t) * tanh(W_c x_t)
PLUGIN = """
import numpy as np

from rnnlab.plugin import CellSpec, ParamSpec, hookimpl, uniform_hidden, valid_steps


def normal(rng, shape, drawn, ctx):
    return rng.normal(size=shape)


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


class Kernels:
    @staticmethod
    def forward(w, x, state0, nonlinearity, lengths=None):
        (h,) = state0
        H = h.shape[-1]
        valid = None if lengths is None else valid_steps(lengths, x.shape[0])[..., None]
        if valid is not None:
            x = np.where(valid, x, 0).astype(x.dtype)
        xw = x @ w["weight_x"].T
        c = np.tanh(xw[..., H:])
        hs, fs = np.empty_like(c), np.empty_like(c)
        for t in range(x.shape[0]):
            f = fs[t] = sigmoid(xw[t, :, :H] + w["gate_v"] * h + w["bias"])
            h_t = f * h + (1.0 - f) * c[t]
            h = h_t if valid is None else np.where(valid[t], h_t, h)
            hs[t] = h_t if valid is None else np.where(valid[t], h_t, 0)
        return hs, (h,), (x, hs, fs, c, state0[0], valid)

    @staticmethod
    def backward(w, cache, dhs):
        x, hs, fs, c, h0, valid = cache
        if valid is not None:
            dhs = np.where(valid, dhs, 0).astype(dhs.dtype)
        H = hs.shape[-1]
        da, dc = np.empty_like(hs), np.empty_like(hs)
        carry = np.zeros_like(hs[0])
        hs_prev = np.concatenate([h0[None], hs[:-1]])
        if valid is not None:  # a finished sequence's state is held, not zeroed
            for t in range(1, x.shape[0]):
                hs_prev[t] = np.where(valid[t - 1], hs[t - 1], hs_prev[t - 1])
        for t in range(x.shape[0] - 1, -1, -1):
            f, h_prev = fs[t], hs_prev[t]
            dh = dhs[t] + carry
            da[t] = dh * (h_prev - c[t]) * f * (1.0 - f)
            dc[t] = dh * (1.0 - f) * (1.0 - c[t] * c[t])
            carry = dh * f + da[t] * w["gate_v"]
        d = np.concatenate([da, dc], axis=-1)
        grads = {
            "weight_x": d.reshape(-1, 2 * H).T @ x.reshape(-1, x.shape[-1]),
            "gate_v": np.einsum("tnh,tnh->h", da, hs_prev),
            "bias": da.reshape(-1, H).sum(axis=0),
        }
        return grads, d @ w["weight_x"]


MGU = CellSpec(
    "mgu",
    description="minimal gated unit: a diagonal recurrence in its one gate",
    params=(
        ParamSpec("weight_x", lambda I, H: (2 * H, I), uniform_hidden),
        ParamSpec("gate_v", lambda I, H: (H,), normal),
        ParamSpec("bias", lambda I, H: (H,), uniform_hidden),
    ),
    kernels={"numpy": Kernels},
)


@hookimpl
def register_cells():
    return [MGU]
"""


def plugin_file(folder: Path) -> Path:
    path = folder / "mgu_cell.py"
    path.write_text(PLUGIN)
    return path


def test_a_cell_in_one_plugin_file_passes_check_backend(tmp_path):
    registry = Registry([plugin_file(tmp_path)], strict=True)
    backend = registry.backend("numpy").load()
    check_backend(backend, cells=registry.cells, only=("mgu",))  # gradients included
    assert "mgu" in backend.cells


def test_its_gradients_match_finite_differences(tmp_path):
    from rnnlab.experiment.config import ModelConfig

    registry = Registry([plugin_file(tmp_path)], strict=True)
    backend = registry.backend("numpy").load()
    cfg = ModelConfig(cell="mgu", hidden_size=4, layers=2, bidirectional=True, dropout=0.5)
    errors = gradient_errors(backend, cfg, "mse", "last", cells=registry.cells, lengths=True)
    assert set(errors) >= {"rnn.weight_x_l1_reverse", "rnn.gate_v_l0", "rnn.bias_l1"}
    assert max(errors.values()) <= 1e-7, errors


@pytest.mark.parametrize("cell", ["mgu", "lru"])
def test_a_run_builds_it_and_another_backend_names_the_reference(tmp_path, cell):
    registry = Registry([plugin_file(tmp_path)], strict=True)
    text = SMALL_SINE.format(epochs=1).replace("[model]", f"[model]\ncell = {cell!r}")
    path = write_experiment(tmp_path, text=text)
    session = prepare(build_experiment(read_toml(path), registry, source=path), registry)
    first = "rnn.gate_v_l0" if cell == "mgu" else "rnn.nu_log_l0"
    assert session.model.params[first].shape == (session.model.cfg.hidden_size,)
    other = text.replace("[train]", '[train]\nbackend = "numba"')
    path = write_experiment(tmp_path, text=other)
    with pytest.raises(
        ConfigError, match=f"backend 'numba' does not support cell '{cell}' .*run it: 'numpy'"
    ):
        prepare(build_experiment(read_toml(path), registry, source=path), registry)
