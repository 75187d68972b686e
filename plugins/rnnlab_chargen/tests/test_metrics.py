"""Bits per character, perplexity, accuracy and the unigram baseline against hand computations."""

import math

import numpy as np
import pytest

from rnnlab.experiment.config import ModelConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.testing import reference_backend
from rnnlab.training.loop import evaluate
from rnnlab.training.session import prepare
from rnnlab_chargen.metrics import model_scores, unigram, unigram_bits
from rnnlab_chargen.vocab import one_hot
from tests.support.chargen import experiment


def constant_model(bias):
    """A model whose logits are ``bias`` at every step, whatever the input."""
    cfg = ModelConfig(hidden_size=3)
    params = init_params(cfg, Shape(len(bias), len(bias)), np.random.default_rng(0))
    params["head.weight"][...] = 0.0
    params["head.bias"][...] = bias
    return Model(cfg, reference_backend(), params)


@pytest.mark.parametrize("chunk_length", [0, 2])
def test_scores_of_known_probabilities(chunk_length):
    p = np.array([0.5, 0.25, 0.25])
    model = constant_model(np.log(p))
    y = np.array([[0, 1, 2, 0]]).T if chunk_length else np.array([[0, 1], [2, 0]])
    x = one_hot(np.zeros_like(y), 3).astype(float)
    scores = model_scores(model, x, y, chunk_length)
    nats = -(math.log(0.5) * 2 + math.log(0.25) * 2) / 4  # = 1.5 ln 2
    assert scores["nats_per_char"] == pytest.approx(nats, rel=1e-12)
    assert scores["bits_per_char"] == pytest.approx(1.5, rel=1e-12)
    assert scores["perplexity"] == pytest.approx(2**1.5, rel=1e-12)
    assert scores["accuracy"] == pytest.approx(0.5)  # argmax is character 0, right twice


def test_unigram_is_add_one_smoothed_on_train():
    p = unigram(np.array([0, 0, 1]), 3)  # counts 2, 1, 0 -> (3, 2, 1) / 6
    np.testing.assert_allclose(p, [3 / 6, 2 / 6, 1 / 6])
    assert unigram_bits(p, np.array([[0], [2]])) == pytest.approx((1 + math.log2(6)) / 2)


def test_every_split_reports_the_metrics_and_its_unigram_baseline(tmp_path):
    text = "aab" * 8 + "abc" + "cab"  # train: 24 characters, val 3, test 3
    exp, registry = experiment(
        tmp_path, {"text": text, "mode": "stateful", "window": 2}, train={"batch_size": 2}
    )
    session = prepare(exp, registry)
    metrics = evaluate(session)
    expected = {
        "loss",
        "nats_per_char",
        "bits_per_char",
        "perplexity",
        "accuracy",
        "unigram_bits_per_char",
    }
    for name, m in metrics.items():
        assert set(m) == expected, name
        assert m["loss"] == pytest.approx(m["nats_per_char"], rel=1e-12)
        assert m["bits_per_char"] == pytest.approx(m["nats_per_char"] / math.log(2))
    p = {"a": 17 / 27, "b": 9 / 27, "c": 1 / 27}  # train counts 16, 8, 0 (+1) over 24 + 3
    test_targets = text[-2:]  # test = the last 3 characters; targets are the last 2
    want = -sum(math.log2(p[c]) for c in test_targets) / 2
    assert metrics["test"]["unigram_bits_per_char"] == pytest.approx(want, rel=1e-12)
