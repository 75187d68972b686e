"""The NumPy backend's BLAS threads: the rule (sizes -> threads) and ``train.threads``."""

from __future__ import annotations

import dataclasses

import pytest

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.plugin import EpochPlan
from rnnlab_numpy import threads
from rnnlab_numpy.backend import NumpyBackend


def plan(cell="lstm", hidden=64, batch=32, threads_=0) -> EpochPlan:
    return EpochPlan(
        ModelConfig(cell=cell, hidden_size=hidden),
        TrainConfig(batch_size=batch, threads=threads_),
        "mse",
        "last",
    )


# -- the rule ---------------------------------------------------------------------------------
def test_step_flops_counts_the_gate_blocks():
    assert threads.step_flops(plan("lstm", 64, 32)) == 2 * 32 * 64 * 4 * 64
    assert threads.step_flops(plan("gru", 32, 16)) == 2 * 16 * 32 * 3 * 32
    assert threads.step_flops(plan("rnn", 128, 32)) == 2 * 32 * 128 * 128


@pytest.mark.parametrize(
    "flops, asked, cores, busy, expected",
    [
        (2 * 32 * 64 * 256, 0, 2, 0.0, 1),  # lstm H=64 B=32: one thread, even when idle
        (threads.TWO_THREAD_FLOPS * 0.99, 0, 2, 0.0, 1),
        (threads.TWO_THREAD_FLOPS, 0, 2, 0.0, 2),  # large products, a core free
        (threads.TWO_THREAD_FLOPS, 0, 2, 1.0, 1),  # large products, the other core busy
        (threads.TWO_THREAD_FLOPS, 0, 2, 9.0, 1),
        (threads.TWO_THREAD_FLOPS, 0, 1, 0.0, 1),  # one core
        (threads.TWO_THREAD_FLOPS, 0, 8, 2.0, 6),
        (1.0, 2, 2, 9.0, 2),  # train.threads decides whatever the sizes and the load
        (1e12, 1, 8, 0.0, 1),
    ],
)
def test_threads_for_sizes(flops, asked, cores, busy, expected):
    assert threads.blas_threads_for(flops, asked, cores, busy) == expected


def test_typical_sizes_use_one_thread_without_looking_at_the_machine(monkeypatch):
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: pytest.fail("looked at the load"))
    for cell in ("rnn", "lstm", "gru"):
        for hidden, batch in ((32, 32), (64, 32), (128, 32), (256, 128)):
            assert NumpyBackend().blas_threads(plan(cell, hidden, batch)) == 1


def test_train_threads_is_honoured():
    assert NumpyBackend().blas_threads(plan(threads_=2)) == 2
    assert NumpyBackend().blas_threads(plan(threads_=1)) == 1


def test_busy_elsewhere_reads_the_running_tasks(tmp_path):
    (tmp_path / "loadavg").write_text("3.10 2.00 1.50 3/512 12345\n")
    assert threads.busy_elsewhere(str(tmp_path)) == 2.0
    (tmp_path / "loadavg").write_text("0.10 0.20 0.30 1/300 12345\n")
    assert threads.busy_elsewhere(str(tmp_path)) == 0.0


def test_threads_is_not_a_plan_feature():
    p = plan()
    assert p.features() == dataclasses.replace(p, train=TrainConfig(threads=2)).features()
