"""The memory check: what a run holds against what it may take (the system's available memory
and a control group's limit)."""

import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import load_experiment_file
from rnnlab.nn.model import Shape
from rnnlab.registry.manager import Registry
from rnnlab.training import memory
from rnnlab.training.session import prepare
from tests.support.paths import EXPERIMENTS

SINE = EXPERIMENTS / "sine.toml"
MiB = 2**20


def sine(*sets):
    registry = Registry()
    return load_experiment_file(SINE, registry, sets), registry


def parts(exp, registry):
    session = prepare(exp, registry)
    return session.dataset, Shape(1, 1), registry.cell(exp.model.cell)


def test_the_footprint_counts_parameter_copies_and_activations():
    exp, registry = sine("model.hidden_size=64", "train.batch_size=16")
    dataset, shape, cell = parts(exp, registry)
    need = memory.footprint(exp, dataset, shape, cell)
    count = 64 * (1 + 64 + 2) + (64 + 1)  # weight_ih, weight_hh, two biases; the head
    assert need.count == count
    assert need.parameters == (1 + memory.COPIES + 2) * count * 8  # adam: two slots
    T = dataset.splits["train"].x.shape[0]
    # rnn: 6 values of H per step and sequence to train, 3 to evaluate; one input, one output
    assert need.training == T * 16 * (64 * 6 + 1 + 1) * 8
    assert (need.steps, need.batch) == (T, 16)
    biggest = max(len(dataset.splits[s]) for s in ("val", "test"))
    assert need.evaluation == T * biggest * (64 * 3 + 1 + 1) * 8
    assert need.data == sum(s.x.nbytes + s.y.nbytes for s in dataset.splits.values())
    sgd = memory.footprint(sine("train.optimizer=sgd")[0], dataset, shape, cell)
    adam = memory.footprint(sine()[0], dataset, shape, cell)
    assert adam.parameters - sgd.parameters == 2 * adam.count * 8


def test_activations_are_refused_with_what_to_reduce():
    # few parameters, so five times them fits anywhere; a batch of long sequences does not
    exp, registry = sine("model.hidden_size=256", "train.batch_size=512", "task.window=50")
    dataset, shape, cell = parts(exp, registry)
    need = memory.footprint(exp, dataset, shape, cell)
    assert need.training > 10 * need.parameters
    have = (need.to_come - 1, "its memory limit (cgroup) is 0.05 GiB")
    with pytest.raises(ConfigError) as caught:
        memory.check_fits_in_memory(exp, dataset, shape, cell, have=have)
    message = str(caught.value)
    assert message.startswith(f"{SINE}: [train]: this run needs about")
    assert "parameters with their gradients" in message and "(cgroup)" in message
    assert "a training batch of 512 sequences of 50 steps" in message
    assert message.endswith(
        "reduce task.window (now 50), train.batch_size (now 512), model.hidden_size (now 256) "
        "or model.layers (now 1)"
    )
    memory.check_fits_in_memory(exp, dataset, shape, cell, have=(need.to_come, "enough"))


@pytest.mark.parametrize(
    "files",
    [
        {"memory.max": "100000000\n", "memory.current": "90000000\n"},
        {"memory/memory.limit_in_bytes": "100000000\n", "memory/memory.usage_in_bytes": "90000000"},
    ],
    ids=["v2", "v1"],
)
def test_a_control_group_limit_bounds_a_run(tmp_path, monkeypatch, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(memory, "CGROUP", tmp_path)
    room, limit = memory.cgroup_room()
    assert (room, limit) == (10_000_000, 100_000_000)
    assert memory.room()[1] == "its memory limit (cgroup) is 0.09 GiB"
    # a run of 2 MiB of parameters: far below this machine's memory, above the group's room
    exp, registry = sine("model.hidden_size=512")
    with pytest.raises(ConfigError, match=r"\[model\]: .*\(its memory limit \(cgroup\) is"):
        memory.check_fits_in_memory(exp, *parts(exp, registry))
    (tmp_path / next(iter(files))).write_text("max\n")
    assert memory.cgroup_room() is None


ADDING_LONG = EXPERIMENTS / "adding_T1000.toml"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mingru", "minlstm", "indrnn", "lru"])
def test_the_estimate_covers_what_the_reference_backend_holds(cell):
    """A training batch's loss and gradients and a split's forward pass on the numpy backend
    (which keeps every step) hold no more than the footprint says, and not far less."""
    import tracemalloc

    import numpy as np

    registry = Registry()
    exp = load_experiment_file(
        ADDING_LONG,
        registry,
        [
            f"model.cell={cell}",
            "model.hidden_size=32",
            "task.length=200",
            "task.train_size=64",
            "task.val_size=64",
            "task.test_size=64",
            "train.batch_size=16",
            "train.backend=numpy",
            *(["model.forget_bias=0.0"] if cell != "lstm" else []),
        ],
    )
    session = prepare(exp, registry)
    need = memory.footprint(exp, session.dataset, Shape(2, 1), registry.cell(cell))
    model, split = session.model, session.dataset.splits["train"]
    x, y = np.ascontiguousarray(split.x[:, :16]), split.y[:16]
    model.loss_and_grads(x[:3], y, "mse", "last")  # anything a first call sets up
    tracemalloc.start()
    try:
        model.loss_and_grads(x, y, "mse", "last")
        training = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        model.predict(session.dataset.splits["test"].x, "last")
        evaluation = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.4 * need.training <= training <= need.training
    assert 0.4 * need.evaluation <= evaluation <= need.evaluation


def test_a_long_run_that_does_not_fit_stops_before_training(tmp_path, monkeypatch):
    """``rnnlab run`` of the adding problem at T = 1000 under a small memory limit: one
    message naming the keys to change, no traceback, no run directory."""
    from click.testing import CliRunner

    from rnnlab.cli import main

    monkeypatch.setattr(memory, "cgroup_room", lambda: (64 * MiB, 128 * MiB))
    monkeypatch.setattr(memory, "available_memory", lambda: 16 * 2**30)
    args = ["run", str(ADDING_LONG), "--out", str(tmp_path), "--set", "train.backend=numpy"]
    sets = ("train.batch_size=256", "task.val_size=50", "task.test_size=50")
    result = CliRunner().invoke(main, [*args, *(a for s in sets for a in ("--set", s))])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert "Traceback" not in text
    assert "[train]: this run needs about" in text
    assert "a training batch of 256 sequences of 1000 steps" in text
    assert "(its memory limit (cgroup) is 0.12 GiB)" in text
    assert "reduce task.length (now 1000), train.batch_size (now 256), model.hidden_size" in text
    assert not any(tmp_path.iterdir())
