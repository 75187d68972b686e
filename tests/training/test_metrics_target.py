"""The model a task's ``metrics`` receives predicts, by default, where the dataset has its
targets: a per-step task scores every step, not only the last."""

from __future__ import annotations

import numpy as np

from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.specs import Dataset, Split, TaskSpec
from rnnlab.training.run import run_experiment
from tests.support.pluginkit import registry_with, write_experiment

SEEN = {}


class EveryStep:
    """Predict the input at every step: targets at every step."""

    def __init__(self, options, context):
        pass

    def build(self, rng):
        def split(n):
            x = rng.normal(size=(6, n, 1))
            return Split(x, x.copy())

        return Dataset(
            {"train": split(32), "val": split(8), "test": split(8)}, 1, 1, "mse", "every"
        )

    def metrics(self, model, dataset, split):
        s = dataset.splits[split]
        out = model.predict(s.x)
        SEEN[split] = out.shape
        return {"mse_all_steps": float(np.mean((out - s.y) ** 2))}

    def demo(self, model, dataset, rng):
        return None


class Tasks:
    from rnnlab.hookspecs import hookimpl

    @hookimpl
    def register_tasks(self):
        return [TaskSpec("every_step", EveryStep, ())]


def test_metrics_see_predictions_at_every_step(tmp_path, monkeypatch):
    from rnnlab.display import figures

    monkeypatch.setattr(figures, "available", lambda: False)
    registry = registry_with(Tasks())
    path = write_experiment(
        tmp_path,
        text='[experiment]\nname = "e"\n[task]\nname = "every_step"\n[model]\nhidden_size = 3\n'
        "[train]\nepochs = 1\n",
    )
    exp = build_experiment(read_toml(path), registry, source=path)
    summary, _ = run_experiment(exp, registry, out_root=tmp_path / "runs")
    assert SEEN == {"train": (6, 32, 1), "val": (6, 8, 1), "test": (6, 8, 1)}
    assert summary["metrics"]["test"]["mse_all_steps"] == summary["metrics"]["test"]["loss"]
