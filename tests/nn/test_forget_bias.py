"""model.forget_bias: an lstm-only init option; 0 keeps PyTorch's default init."""

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import build_experiment
from rnnlab.experiment.schema import ModelConfig
from rnnlab.nn.model import Shape, init_params
from rnnlab.registry.manager import Registry


def experiment(**model):
    raw = {"task": {"name": "sine"}, "model": model}
    return build_experiment(raw, Registry(), source=None)


def test_default_is_zero_and_leaves_the_init_unchanged():
    assert experiment(cell="lstm").model.forget_bias == 0.0
    a = init_params(ModelConfig(cell="lstm", hidden_size=4), Shape(2, 1), np.random.default_rng(3))
    b = init_params(
        ModelConfig(cell="lstm", hidden_size=4, forget_bias=0.0),
        Shape(2, 1),
        np.random.default_rng(3),
    )
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_sets_the_forget_slice_and_nothing_else():
    H = 4
    plain = init_params(
        ModelConfig(cell="lstm", hidden_size=H, layers=2), Shape(2, 1), np.random.default_rng(3)
    )
    biased = init_params(
        ModelConfig(cell="lstm", hidden_size=H, layers=2, forget_bias=2.5),
        Shape(2, 1),
        np.random.default_rng(3),
    )
    forget = slice(H, 2 * H)
    for layer in range(2):
        b_ih, b_hh = biased[f"rnn.bias_ih_l{layer}"], biased[f"rnn.bias_hh_l{layer}"]
        np.testing.assert_array_equal(b_ih[forget], 2.5)
        np.testing.assert_array_equal(b_hh[forget], 0.0)
        keep = np.r_[0:H, 2 * H : 4 * H]
        np.testing.assert_array_equal(b_ih[keep], plain[f"rnn.bias_ih_l{layer}"][keep])
        np.testing.assert_array_equal(b_hh[keep], plain[f"rnn.bias_hh_l{layer}"][keep])
    for name in plain:
        if "bias" not in name:
            np.testing.assert_array_equal(biased[name], plain[name])


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_rejected_for_cells_other_than_lstm(cell):
    with pytest.raises(ConfigError, match=r"\[model\.forget_bias\].*lstm"):
        experiment(cell=cell, forget_bias=1.0)
