"""A cell added in one plugin file, its spec and numpy kernels only, runs on the reference
backend: the conformance kit passes on it, and `rnnlab run --plugin` trains it."""

from pathlib import Path

import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.registry.manager import Registry
from rnnlab.testing import check_backend, gradient_errors
from rnnlab.training.session import prepare
from tests.support.paths import ROOT
from tests.support.pluginkit import SMALL_SINE, write_experiment

# The whole plugin, as the tutorial page shows it: a minimal gated unit.
PAGE = ROOT / "docs" / "tutorials" / "adding-a-cell.md"
PLUGIN = PAGE.read_text().split('```python title="mgu_cell.py"\n', 1)[1].split("```", 1)[0]


def plugin_file(folder: Path) -> Path:
    path = folder / "mgu_cell.py"
    path.write_text(PLUGIN)
    return path


def test_the_tutorials_test_passes(tmp_path, monkeypatch):
    test = PAGE.read_text().split('```python title="test_mgu.py"\n', 1)[1].split("```", 1)[0]
    plugin_file(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {}
    exec(compile(test, "test_mgu.py", "exec"), namespace)
    namespace["test_mgu_conforms"]()


def test_a_cell_in_one_plugin_file_passes_check_backend(tmp_path):
    registry = Registry([plugin_file(tmp_path)], strict=True)
    backend = registry.backend("numpy").load()
    check_backend(backend, cells=registry.cells, only=("mgu",))  # gradients included
    assert "mgu" in backend.cells


def test_its_gradients_match_finite_differences(tmp_path):
    from rnnlab.experiment.schema import ModelConfig

    registry = Registry([plugin_file(tmp_path)], strict=True)
    backend = registry.backend("numpy").load()
    cfg = ModelConfig(cell="mgu", hidden_size=4, layers=2, bidirectional=True, dropout=0.5)
    errors = gradient_errors(backend, cfg, "mse", "last", cells=registry.cells, lengths=True)
    assert set(errors) >= {"rnn.weight_x_l1_reverse", "rnn.gate_v_l0", "rnn.bias_l1"}
    assert max(errors.values()) <= 1e-7, errors


@pytest.mark.parametrize("cell", ["mgu", "lru"])
def test_a_run_builds_its_parameters_from_the_spec(tmp_path, cell):
    registry = Registry([plugin_file(tmp_path)], strict=True)
    text = SMALL_SINE.format(epochs=1).replace("[model]", f"[model]\ncell = {cell!r}")
    path = write_experiment(tmp_path, text=text)
    session = prepare(build_experiment(read_toml(path), registry, source=path), registry)
    first = "rnn.gate_v_l0" if cell == "mgu" else "rnn.nu_log_l0"
    assert session.model.params[first].shape == (session.model.cfg.hidden_size,)


def test_a_backend_without_the_plugins_cell_names_the_reference(tmp_path):
    registry = Registry([plugin_file(tmp_path)], strict=True)
    text = SMALL_SINE.format(epochs=1).replace("[model]", "[model]\ncell = 'mgu'")
    other = text.replace("[train]", '[train]\nbackend = "numba"')
    path = write_experiment(tmp_path, text=other)
    with pytest.raises(
        ConfigError, match="backend 'numba' does not support cell 'mgu' .*run it: 'numpy'"
    ):
        prepare(build_experiment(read_toml(path), registry, source=path), registry)
