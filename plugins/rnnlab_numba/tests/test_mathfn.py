"""The numba kernels' tanh and sigmoid: float32 computed in float32 (accurate, vectorised, no
float64 inside), float64 as before."""

import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import njit  # noqa: E402

from rnnlab_numba.mathfn import FLAGS, like, sigmoid, tanh, zero  # noqa: E402

# Measured over every finite float32 (2026-12-02, AMD EPYC Zen 4): 2 ulp for both
ULP32 = 2


@njit(fastmath=FLAGS, error_model="numpy", cache=True)
def tanh_sigmoid(x, t, s, d):
    """The loop a kernel runs: both functions and tanh' = 1 - t^2 with a constant of x's type."""
    one = like(zero(x[0]), 1.0)
    for i in range(x.size):
        t[i] = tanh(x[i])
        s[i] = sigmoid(x[i])
        d[i] = one - t[i] * t[i]


def apply(x, derivative=False):
    t, s, d = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    tanh_sigmoid(x, t, s, d)
    return (t, s, d) if derivative else (t, s)


def ordered(v):
    """float32 bits as integers in the order of the values, so that ulps are differences."""
    i = v.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def ulps32(got, want):
    return np.abs(ordered(got) - ordered(want))


def reference_tanh32(x):
    """tanh correctly rounded to float32 (float64 tanh has 53 bits for 24)."""
    return np.tanh(x.astype(np.float64)).astype(np.float32)


def reference_sigmoid32(x):
    x = x.astype(np.float64)
    e = np.exp(-np.abs(x))  # <= 1: no overflow
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)


def float32_sweep():
    """A dense sweep, every magnitude, and the neighbours of each range-reduction boundary."""
    f = np.float32
    dense = np.linspace(-20, 20, 400_001, dtype=f)
    mags = np.geomspace(1e-45, 3.4e38, 50_000).astype(f)
    # k changes where 2|x| / ln2 (tanh) or |x| / ln2 (sigmoid) crosses m + 1/2
    edges = np.concatenate(
        [(np.arange(30) + 0.5) * math.log(2) / 2, (np.arange(151) + 0.5) * math.log(2)]
    ).astype(f)
    near = (edges[:, None].view(np.int32) + np.arange(-64, 65, dtype=np.int32)).view(f).ravel()
    special = np.array(
        [0.0, 1e-45, 1e-40, 1.1754942e-38, 1.1754944e-38, 1e-30, 1e-8, 2.4e-4, 0.3466, 0.5]
        + [1.0, 9.0, 9.01, 9.02, 10.0, 10.5, 17.0, 17.4, 20.0, 87.3, 88.8, 103.9, 104.0, 104.1]
        + [1e3, 3.4028235e38],
        f,
    )
    x = np.concatenate([dense, mags, near, special])
    return np.concatenate([x, -x])


def test_float32_within_2_ulp_of_the_correctly_rounded_values():
    x = float32_sweep()
    t, s, d = apply(x, derivative=True)
    assert t.dtype == s.dtype == d.dtype == np.float32
    t64 = t.astype(np.float64)
    assert np.abs(d - (1 - t64 * t64)).max() <= 2**-24  # fused or not
    assert ulps32(t, reference_tanh32(x)).max() <= ULP32
    assert ulps32(s, reference_sigmoid32(x)).max() <= ULP32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 25.0, -25.0, 200.0, -200.0], dtype)
    t, s = apply(x)
    assert np.isnan(t[0]) and np.isnan(s[0])
    assert list(t[1:3]) == [1.0, -1.0] and list(s[1:3]) == [1.0, 0.0]
    assert t[3] == 0.0 and not np.signbit(t[3]) and t[4] == 0.0 and np.signbit(t[4])
    assert list(s[3:5]) == [0.5, 0.5]
    assert list(t[5:]) == [1.0, -1.0, 1.0, -1.0] and list(s[7:]) == [1.0, 0.0]
    tiny = np.array([np.finfo(dtype).smallest_subnormal, np.finfo(dtype).tiny], dtype)
    assert np.array_equal(apply(tiny)[0], tiny) and np.array_equal(apply(-tiny)[0], -tiny)


def test_float64_as_numpy_computes_it():
    x = np.concatenate([np.random.default_rng(0).normal(0, 8, 100_000), [1e-300, 19.9, 20.1]])
    t, s = apply(x)
    assert t.dtype == s.dtype == np.float64
    assert (np.abs(t - np.tanh(x)) / np.spacing(np.abs(np.tanh(x)))).max() <= 3
    # the NumPy reference's sigmoid, (1 + tanh(a / 2)) / 2, with tanh's few ulp halved
    assert np.abs(s - 0.5 * (1.0 + np.tanh(0.5 * x))).max() <= 2**-52


def test_python_calls_run_the_compiled_functions():
    for x in (np.float32(-0.7), np.float64(-0.7), np.float32(30.5)):
        t, s = apply(np.array([x]))
        assert (tanh(x), sigmoid(x)) == (t[0], s[0])


def test_float32_loop_is_float32_and_vectorised():
    """No double anywhere in the float32 loop: a float64 constant creeping back in fails here."""
    fresh = njit(fastmath=FLAGS, error_model="numpy")(tanh_sigmoid.py_func)  # cached code has no IR
    x = np.zeros(8, np.float32)
    fresh(x, x.copy(), x.copy(), x.copy())
    ir = fresh.inspect_llvm(fresh.signatures[0])
    assert not re.search(r"\bdouble\b|\bfpext\b|\bfptrunc\b", ir)
    assert re.search(r"<(8|16) x float>", ir)
    assert not re.search(r"call\s+[^\n]*@(tanhf?|expf?|expm1f?)\b", ir)  # no scalar library calls


def test_a_second_process_loads_the_kernel_from_the_cache(tmp_path):
    (tmp_path / "kernel.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from numba import njit
            from rnnlab_numba.mathfn import sigmoid, tanh

            @njit(cache=True)
            def k(x):
                return tanh(x) + sigmoid(x)

            k(np.float32(0.5))
            print(sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))
            """
        )
    )
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}

    def run():
        done = subprocess.run(
            [sys.executable, str(tmp_path / "kernel.py")],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.split()

    assert run() == ["0", "1"]
    assert run() == ["1", "0"]
