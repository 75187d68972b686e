"""A run's BLAS threads: what the backend asks for is held while the run trains and records its
results, written to summary.json, and put back afterwards; what the count does to results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_info

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.plugin import EpochPlan, hookimpl
from rnnlab.training.blas import blas_threads
from tests.support.pluginkit import registry_with, run, write_experiment

HAS_BLAS = any(p["user_api"] == "blas" for p in threadpool_info())
needs_blas = pytest.mark.skipif(not HAS_BLAS, reason="NumPy's BLAS is not visible to threadpoolctl")


def plan() -> EpochPlan:
    return EpochPlan(ModelConfig(cell="lstm", hidden_size=64), TrainConfig(), "mse", "last")


def blas_counts() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


# -- what a run holds, records and puts back -------------------------------------------------
class SeesBlas:
    """A plugin that notes BLAS's thread counts while the run trains."""

    def __init__(self):
        self.seen: list[list[int]] = []

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        self.seen.append(blas_counts())


def run_with(tmp_path, *sets, name="run"):
    text = write_experiment(tmp_path, epochs=2).read_text()
    for key, value in sets:  # TABLE.KEY=VALUE into the tiny experiment
        table, option = key.split(".")
        text = text.replace(f"[{table}]\n", f"[{table}]\n{option} = {value}\n")
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    seer = SeesBlas()
    summary, run_dir = run(path, registry_with(seer), tmp_path / "runs")
    return summary, run_dir, seer.seen


@needs_blas
@pytest.mark.parametrize("asked", [1, 2])
def test_train_threads_held_during_the_run_recorded_and_put_back(tmp_path, asked):
    controller = ThreadpoolController()
    with controller.limit(limits=3 - asked, user_api="blas"):  # the other count before the run
        before = blas_counts()
        summary, _, seen = run_with(tmp_path, ("train.threads", asked))
        after = blas_counts()
    assert seen and all(counts == [asked] * len(counts) for counts in seen)
    assert after == before  # nothing leaks out of the run
    blas = summary["blas"]
    assert blas["threads"] == asked and blas["chosen"] == f"train.threads = {asked}"
    assert blas["library"].split()[0] in {p["internal_api"] for p in threadpool_info()}


@needs_blas
def test_automatic_choice_is_one_thread_for_a_small_model(tmp_path):
    summary, run_dir, seen = run_with(tmp_path)
    assert all(counts == [1] * len(counts) for counts in seen)
    assert summary["blas"]["threads"] == 1 and summary["blas"]["chosen"].startswith("automatic")
    assert json.loads((run_dir.path / "summary.json").read_text())["blas"] == summary["blas"]


def test_a_backend_that_asks_for_nothing_leaves_blas_alone():
    class Leaves:
        pass

    before = blas_counts()
    with blas_threads(Leaves(), plan()) as used:
        assert blas_counts() == before
    assert used["threads"] == max(before, default=0)
    assert used["chosen"].startswith("as the environment")


# -- results and the count ------------------------------------------------------------------
@needs_blas
def test_small_models_give_the_same_bytes_on_one_and_two_threads(tmp_path):
    _, one, _ = run_with(tmp_path, ("train.threads", 1), name="one")
    _, two, _ = run_with(tmp_path, ("train.threads", 2), name="two")
    _, auto, _ = run_with(tmp_path, name="auto")
    with np.load(one.path / "params.npz") as a, np.load(two.path / "params.npz") as b:
        with np.load(auto.path / "params.npz") as c:
            for k in a.files:
                assert a[k].tobytes() == b[k].tobytes() == c[k].tobytes(), k


@needs_blas
@pytest.mark.parametrize("count", [1, 2])
def test_a_thread_count_gives_the_same_bytes_every_time(count):
    """Products summed over many rows (a weight gradient over T*N rows) may differ in the last
    bit between one and two threads, as OpenBLAS may split the sum; for one count they are
    the same every time."""
    rng = np.random.default_rng(0)
    g, h = rng.standard_normal((1000, 256)), rng.standard_normal((1000, 64))
    controller = ThreadpoolController()
    with controller.limit(limits=count, user_api="blas"):
        first = g.T @ h
        assert all((g.T @ h).tobytes() == first.tobytes() for _ in range(5))
    with controller.limit(limits=3 - count, user_api="blas"):
        other = g.T @ h
    np.testing.assert_allclose(other, first, rtol=0, atol=1e-13 * np.abs(first).max())
