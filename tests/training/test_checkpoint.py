"""The checkpoint file, its schedule, the experiment fingerprint, and run directory names."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from rnnlab.errors import RnnlabError
from rnnlab.store import checkpoint
from rnnlab.store.checkpoint import (
    Checkpoint,
    EpochPosition,
    TrainState,
    config_differences,
    fingerprint,
)
from rnnlab.store.rundir import RunDir, write_file
from rnnlab.training.checkpoints import CheckpointSchedule

CONFIG = {
    "experiment": {"name": "x", "seed": 1},
    "task": {"name": "sine", "window": 5},
    "model": {"hidden_size": 4},
    "train": {
        "epochs": 10,
        "schedule": "constant",
        "learning_rate": 0.1,
        "checkpoint_every": 1,
        "checkpoint_seconds": 60.0,
    },
}


def sample(position=True, best=True) -> Checkpoint:
    rng = np.random.default_rng(5)
    params = {"rnn.weight_ih_l0": rng.normal(size=(4, 1)), "head.bias": rng.normal(size=(1,))}
    state = TrainState(
        epoch=3,
        history=[{"epoch": 1, "loss": 0.5}],
        best_loss=0.25 if best else math.inf,
        best_epoch=2 if best else 0,
        best_params={k: v + 1 for k, v in params.items()} if best else None,
        position=EpochPosition(rng.permutation(9), [0.5, 0.25]) if position else None,
    )
    slots = {k: {"exp_avg": v * 2, "exp_avg_sq": v * v} for k, v in params.items()}
    gens = {"shuffle": np.random.default_rng(2).bit_generator.state}
    return Checkpoint(state, params, {"steps": 17, "slots": slots}, gens, CONFIG, "abc", "/x.toml")


@pytest.mark.parametrize("position, best", [(True, True), (False, False)])
def test_round_trip_is_exact(tmp_path, position, best):
    ck = sample(position, best)
    path = tmp_path / "checkpoint.npz"
    write_file(path, lambda f: checkpoint.save(ck, f))
    back = checkpoint.load(path)
    assert back.state.epoch == 3 and back.state.history == ck.state.history
    s, t = back.state, ck.state
    assert (s.best_loss, s.best_epoch) == (t.best_loss, t.best_epoch)
    for a, b in (
        (back.params, ck.params),
        (back.optimizer["slots"]["head.bias"], ck.optimizer["slots"]["head.bias"]),
    ):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert back.optimizer["steps"] == 17
    assert back.generators == ck.generators and back.config == CONFIG
    assert (back.data_digest, back.source) == ("abc", "/x.toml")
    if position:
        assert np.array_equal(back.state.position.order, ck.state.position.order)
        assert back.state.position.losses == [0.5, 0.25]
    else:
        assert back.state.position is None and back.state.best_params is None


def test_restored_generator_continues_the_same_stream():
    a = np.random.default_rng(11)
    a.random(3)
    saved = a.bit_generator.state
    b = np.random.default_rng(0)
    b.bit_generator.state = saved
    assert np.array_equal(a.permutation(50), b.permutation(50))


def test_missing_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(RnnlabError, match="no checkpoint.*rnnlab run"):
        checkpoint.load(tmp_path / "checkpoint.npz")


def test_fingerprint_ignores_only_keys_that_do_not_change_the_numbers():
    def changed(table, key, value):
        c = {t: dict(v) for t, v in CONFIG.items()}
        c[table][key] = value
        return c

    base = fingerprint(CONFIG)
    assert fingerprint(changed("train", "checkpoint_every", 5)) == base
    assert fingerprint(changed("train", "checkpoint_seconds", 0.0)) == base
    assert fingerprint(changed("train", "threads", 2)) == base  # the same numbers on any count
    assert fingerprint(changed("train", "epochs", 20)) == base  # constant learning rate
    assert fingerprint(changed("train", "learning_rate", 0.2)) != base
    assert fingerprint(changed("task", "window", 6)) != base
    cosine = changed("train", "schedule", "cosine")
    assert fingerprint(cosine) != fingerprint(
        {**cosine, "train": {**cosine["train"], "epochs": 20}}
    )
    assert config_differences(CONFIG, changed("model", "hidden_size", 5)) == [
        "model.hidden_size: 4 -> 5"
    ]


def test_schedule_by_epochs_and_by_time():
    now = [0.0]
    s = CheckpointSchedule(every=3, seconds=10.0, clock=lambda: now[0])
    assert [s.due_after_epoch(e) for e in range(1, 7)] == [False, False, True] * 2
    assert not s.due_after_batch()
    now[0] = 10.0
    assert s.due_after_batch() and s.due_after_epoch(1)
    s.written()
    assert not s.due_after_batch()
    off = CheckpointSchedule(every=0, seconds=0.0, clock=lambda: now[0])
    now[0] = 1e9
    assert not off.due_after_epoch(3) and not off.due_after_batch()


def test_run_directories_started_in_the_same_second_are_all_new(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt: "20260101-000000")
    paths = [RunDir.create(tmp_path, "same").path for _ in range(5)]
    assert len(set(paths)) == 5 and all(p.is_dir() for p in paths)


def test_failed_write_is_a_clear_error_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def fail(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(RnnlabError, match="No space left on device"):
        write_file(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
