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
    # rnn: one gate, one state; the backward pass keeps about as much again and more
    assert need.training == T * 16 * ((64 * 2 + 1) + 64 * (1 + memory.BACKWARD_EXTRA) + 1) * 8
    biggest = max(len(dataset.splits[s]) for s in ("val", "test"))
    assert need.evaluation == T * biggest * (64 * 2 + 1 + 1) * 8
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
    assert message.endswith(
        "reduce train.batch_size, the sequence length, model.hidden_size or model.layers"
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
