"""Every registered task passes check_task and every available backend passes check_backend.

Tasks and backends are discovered through the Registry, so a plugin added to the project (or
installed next to it) is covered without editing this file.
"""

import pytest

from rnnlab.plugins import Registry
from rnnlab.testing import check_backend, check_task

REGISTRY = Registry()


@pytest.mark.parametrize("name", sorted(REGISTRY.tasks))
def test_task_conforms(name):
    check_task(REGISTRY.task(name))


@pytest.mark.parametrize("name", sorted(REGISTRY.backends))
def test_backend_conforms(name):
    spec = REGISTRY.backend(name)
    reason = spec.unavailable()
    if reason:
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    check_backend(spec.load())


def test_every_plugin_loaded():
    assert not REGISTRY.failures(), [p.status for p in REGISTRY.failures()]
