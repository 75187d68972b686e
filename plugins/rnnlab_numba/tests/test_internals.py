"""The numba and llvmlite internals the numba backend relies on (internals.py): present as it
was written against them, or one clear error naming the installed versions."""

import importlib.metadata

import numpy as np
import pytest

pytest.importorskip("numba")

from packaging.requirements import Requirement  # noqa: E402

from rnnlab_numba import internals  # noqa: E402


def test_the_installed_numba_and_llvmlite_have_what_the_backend_uses():
    found = internals.problems()
    assert not found, (
        f"the numba backend was written against {internals.TESTED}; {internals.versions()} "
        f"changed: {found}"
    )
    internals.check()


def test_a_changed_internal_fails_loudly_naming_the_versions(monkeypatch):
    monkeypatch.setattr(internals, "for_range", lambda count: None)
    with pytest.raises(internals.InternalsChanged) as caught:
        internals.check()
    message = str(caught.value)
    assert "cgutils.for_range" in message
    assert internals.versions() in message and internals.TESTED in message


def test_loading_the_backend_checks_the_internals(monkeypatch):
    import rnnlab_numba

    monkeypatch.setattr(internals, "problems", lambda: ["something moved"])
    with pytest.raises(internals.InternalsChanged, match="something moved"):
        rnnlab_numba._load()


def test_the_installed_versions_are_in_the_pinned_range():
    pins = {}
    for line in importlib.metadata.requires("rnnlab") or []:
        req = Requirement(line)
        if req.name in ("numba", "llvmlite") and req.marker is None:
            pins[req.name] = req.specifier
    assert set(pins) == {"numba", "llvmlite"}
    for name, spec in pins.items():
        version = importlib.metadata.version(name)
        assert spec.contains(version), f"{name} {version} is outside the tested range {spec}"
        assert any(s.operator == "<" for s in spec), f"{name} has no upper bound"


def test_hand_written_ir_still_compiles_and_runs():
    """The intrinsics built on these internals (a vector block, the function attribute, the
    floating-point control word), in one small kernel."""
    from rnnlab_numba.fpenv import flush_subnormals, restore
    from rnnlab_numba.jitcache import njit
    from rnnlab_numba.simd import VBYTES, K1x1, wide_vectors

    @njit
    def kernel(o, a, b):
        wide_vectors()
        old = flush_subnormals()
        out, lhs = (o.ctypes.data, o.shape[1]), (a.ctypes.data, a.shape[1], 1)
        K1x1(out, lhs, (b.ctypes.data, b.shape[1]), a.shape[1], o)
        restore(old)
        return old

    lanes = VBYTES // 8
    a, b = np.arange(3.0).reshape(1, 3), np.arange(3.0 * lanes).reshape(3, lanes)
    o = np.ones((1, lanes))
    kernel(o, a, b)
    assert np.array_equal(o, 1 + a @ b)
