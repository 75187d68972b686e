"""Every registered task passes check_task and every available backend passes check_backend.

Tasks and backends are discovered through the Registry, so a plugin added to the project (or
installed next to it) is covered without editing this file. A task is checked with the [task]
options of every experiment file in experiments/ that uses it, or with its defaults when none does
(some tasks, such as chargen, need an option set: their defaults alone are not a valid task).
"""

import tomllib

import pytest

from rnnlab.registry.manager import Registry
from rnnlab.specs import TaskContext
from rnnlab.testing import check_backend, check_task
from tests.support.paths import EXPERIMENTS

REGISTRY = Registry()


def task_cases() -> list[tuple[str, str, dict]]:
    """``(task, experiment file or "defaults", options)`` for every registered task."""
    cases = []
    for path in sorted(EXPERIMENTS.glob("*.toml")):
        task = dict(tomllib.loads(path.read_text()).get("task", {}))
        name = task.pop("name", None)
        if name in REGISTRY.tasks and (name, task) not in [(n, o) for n, _, o in cases]:
            cases.append((name, path.name, task))  # once per distinct set of options
    used = {name for name, _, _ in cases}
    return cases + [(name, "defaults", {}) for name in sorted(REGISTRY.tasks) if name not in used]


@pytest.mark.parametrize(
    "name, source, options", task_cases(), ids=[f"{n}-{s}" for n, s, _ in task_cases()]
)
def test_task_conforms(name, source, options):
    # one seed: a corpus-sized experiment takes seconds per build-and-score
    check_task(REGISTRY.task(name), options, context=TaskContext(EXPERIMENTS), seeds=(0,))


@pytest.mark.parametrize("name", sorted(REGISTRY.backends))
def test_backend_conforms(name):
    spec = REGISTRY.backend(name)
    reason = spec.unavailable()
    if reason:
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    check_backend(spec.load())


def test_every_plugin_loaded():
    assert not REGISTRY.failures(), [p.status for p in REGISTRY.failures()]
