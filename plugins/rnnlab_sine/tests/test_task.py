"""The sine task: the article's data, chronological splits, metrics."""

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.specs import TaskContext
from rnnlab_sine.task import OPTIONS, SineTask

DEFAULTS = {o.name: o.default for o in OPTIONS}


def build(**options):
    task = SineTask({**DEFAULTS, **options}, TaskContext(base_dir=None))
    return task, task.build(np.random.default_rng(0))


def test_article_data_and_chronological_splits():
    _, data = build()
    series = np.sin(np.linspace(0, 100, 1000))
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sizes == {"train": 790, "val": 90, "test": 90}  # 800/100/100 points, window 10
    train, test = data.splits["train"], data.splits["test"]
    assert train.x.shape == (10, 790, 1) and train.y.shape == (790, 1)
    np.testing.assert_array_equal(train.x[:, 0, 0], series[:10])
    assert train.y[0, 0] == series[10]
    np.testing.assert_array_equal(test.x[:, 0, 0], series[900:910])
    assert test.y[-1, 0] == series[-1]
    assert (data.loss, data.target, data.input_size, data.output_size) == ("mse", "last", 1, 1)


def test_noise_is_seeded():
    task, a = build(noise=0.1)
    b = task.build(np.random.default_rng(0))
    c = task.build(np.random.default_rng(1))
    np.testing.assert_array_equal(a.splits["train"].x, b.splits["train"].x)
    assert not np.array_equal(a.splits["train"].x, c.splits["train"].x)


@pytest.mark.parametrize(
    "options,key",
    [
        ({"window": 200}, "window"),
        ({"train_fraction": 0.95}, "val_fraction"),
        ({"stop": -1.0}, "stop"),
    ],
)
def test_options_that_cannot_work_are_config_errors(options, key):
    with pytest.raises(ConfigError) as info:
        build(**options)
    assert info.value.key == key


def test_forecast_of_a_perfect_model_is_exact():
    """A model that knows sin(t+d) = 2cos(d) sin(t) - sin(t-d) forecasts exactly."""
    task, data = build()
    d = 100 / 999

    class Exact:
        params = {"head.weight": np.zeros((1, 1))}

        def predict(self, x):
            return 2 * np.cos(d) * x[-1] - x[-2]

    metrics = task.metrics(Exact(), data, "test")
    assert metrics["mse"] < 1e-25 and metrics["forecast_mse"] < 1e-20
