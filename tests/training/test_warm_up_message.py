"""The warm-up message ("may compile kernels") is for backends that have a warm-up: the NumPy
reference compiles nothing and says nothing of it."""

from __future__ import annotations

from rnnlab.specs import Backend
from rnnlab.training.loop import warm_up
from rnnlab.training.session import prepare
from tests.support.tiny_runs import tiny_experiment


class Info:
    warmup_seconds = 0.0
    runner_declined = None


def messages(tmp_path, backend=None) -> list[str]:
    exp, registry = tiny_experiment(tmp_path)
    session = prepare(exp, registry)
    if backend is not None:
        session.backend = backend
    heard = []
    warm_up(session, Info(), heard.append)
    return heard


def test_numpy_says_nothing_about_compiling(tmp_path):
    assert not any("compile" in m for m in messages(tmp_path))


def test_a_backend_with_a_warm_up_says_it_prepares(tmp_path):
    exp, registry = tiny_experiment(tmp_path)
    numpy = prepare(exp, registry).backend

    class Compiling(type(numpy)):
        def warm_up(self, plan):
            pass

    compiling = Compiling()
    assert isinstance(compiling, Backend) or hasattr(compiling, "layer_forward")
    heard = messages(tmp_path, compiling)
    assert any("may compile kernels" in m for m in heard) and any("ready in" in m for m in heard)
