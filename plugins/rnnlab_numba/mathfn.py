"""Scalar functions for the kernels, each in its argument's own precision: ``tanh``, ``sigmoid``,
``zero`` and ``like``.

``np.tanh`` inside ``@njit`` is a scalar library call (~18 ns per element here); these branch-free
versions vectorise (~1-2 ns). float64: range reduction and a degree-14 polynomial, within 3 ulp of
NumPy's tanh. float32: float32 throughout (float32 constants, a degree-8 polynomial), within 2 ulp
of the correctly rounded tanh and sigmoid (every finite float32 checked), subnormals included.

float32 in ``@njit`` code, for kernel writers. A Python number is float64 or int64 in numba, and
float32 with either gives float64: ``0.5 * a``, ``1 - s * s``, ``a / 2``, ``a * 0``, ``max(z, 0)``
and ``z if z > 0 else 0`` are all float64 for a float32 ``a``, silently (``fpext`` on load,
``fptrunc`` on store, half the vector width: float64 speed). Keep float32 in float32:

- make constants of the array's own type once, before the loops: ``half = like(a[0], 0.5)``,
  ``one = x.dtype.type(1)``, ``acc = zero(x[0])``; then ``half * a``, ``one - s * s``;
- ``a * a`` and ``a ** 2`` stay float32 (``a ** 2.0`` does not); ``abs``, ``np.sqrt``, ``math.exp``
  and ``tanh``/``sigmoid`` here return the argument's type;
  relu: ``zero(z) if z < zero(z) else z`` (NaN passes);
- module-level ``np.float32`` constants stay float32 (numba freezes globals with their type);
- check a kernel: ``disp.inspect_llvm(sig)`` of a float32 signature has no ``double`` and no
  ``fpext``, and its inner loops show ``<8 x float>`` (or ``<16 x float>``). LLVM narrows a lone
  float64 operation stored straight back to float32, never a chain (a polynomial, an accumulator).

The backend's kernels are cached under a hash of all of its sources (jitcache.py): after a
change here, the kernels calling these functions compile afresh. (A kernel of your own with
numba's ``cache=True`` is keyed on its own file only, as numba does it.)
"""

import math
from decimal import Decimal

import numpy as np
from numba import types
from numba.extending import overload

from .jitcache import njit

FLAGS = {"contract"}  # fused multiply-add only: no reassociation, NaN and inf kept
OPTS = dict(fastmath=FLAGS, error_model="numpy", cache=True)
# an overload is compiled into its caller (whose cache holds it): not cached itself
INLINE = dict(fastmath=FLAGS, error_model="numpy")
LN2 = Decimal("0.693147180559945309417232121458176568075500134360255")

# --- float64 -------------------------------------------------------------------------------------
# Cody-Waite split of ln 2: k * LN2_HI is exact for the k we meet (k <= 58)
LN2_HI = round(math.log(2) * 2**40) / 2**40
LN2_LO = float(LN2 - Decimal(LN2_HI))
INV_LN2 = 1.0 / math.log(2)
# Taylor coefficients 1/n! of expm1(r) = r + r^2/2! + ... + r^14/14!  (|r| <= ln2/2: error < 1e-17)
C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14 = (
    1.0 / math.factorial(n) for n in range(2, 15)
)


@njit(**OPTS)
def tanh64(x):
    # tanh|x| = E / (E + 2) with E = expm1(2|x|); |x| >= 20 gives 1 to the last bit
    a = abs(x)
    a = 20.0 if a > 20.0 else a  # written so that NaN passes through
    y = 2.0 * a
    # y = k ln2 + r, |r| <= ln2 / 2;  expm1(y) = 2^k expm1(r) + (2^k - 1)
    k = math.floor(y * INV_LN2 + 0.5)
    r = (y - k * LN2_HI) - k * LN2_LO
    p = C14
    p = p * r + C13
    p = p * r + C12
    p = p * r + C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    u = r + r * r * p
    s = float(np.int64(1) << np.int64(k))
    e = s * u + (s - 1.0)
    return math.copysign(e / (e + 2.0), x)


@njit(**OPTS)
def sigmoid64(a):
    # sigmoid(a) = (1 + tanh(a/2)) / 2, as the NumPy reference computes it
    return 0.5 * (1.0 + tanh64(0.5 * a))


# --- float32: every constant float32, so nothing promotes ----------------------------------------
F32 = np.float32
# k * LN2_HI32 is exact for |k| < 2^8 (LN2_HI32 has 16 significant bits); here |k| <= 150
LN2_HI32 = F32(0.693145751953125)
LN2_LO32 = F32(LN2 - Decimal(0.693145751953125))
INV_LN2_32 = F32(1.0 / math.log(2))
# 1/n! for expm1(r) = r + r^2 (1/2! + r/3! + ... + r^6/8!)  (|r| <= ln2/2: error < 6e-10 relative)
E2, E3, E4, E5, E6, E7, E8 = (F32(1.0 / math.factorial(n)) for n in range(2, 9))
HALF32, ONE32, TWO32, BIAS32 = F32(0.5), F32(1.0), F32(2.0), np.int32(127)
TANH_CLAMP32 = F32(10.0)  # float32 tanh is 1 from 9.011 on
SIGMOID_CLAMP32 = F32(104.0)  # exp(-104) is below half the smallest subnormal: sigmoid is 0 or 1
K_SHIFT32 = np.int32(64)  # 2^(k + 64) stays normal down to k = -150; scaled back by 2^-64
TWO_M64_32 = F32(2.0**-64)


@njit(**OPTS)
def reduce_exp32(t, shift):
    """``(u, s)`` with ``exp(t) = 2^-shift s (1 + u)``, for |t| <= 104 (or NaN: then u is NaN).

    t = k ln2 + r with |r| <= ln2 / 2: ``u = expm1(r)`` by a polynomial, ``s = 2^(k + shift)`` built
    from its bits, so it must stay a normal number (-126 <= k + shift <= 127).
    """
    q = t * INV_LN2_32 + HALF32
    k = np.floor(q if q == q else F32(0.0))  # NaN gives k = 0: the conversion below is defined
    r = (t - k * LN2_HI32) - k * LN2_LO32
    p = E8
    p = p * r + E7
    p = p * r + E6
    p = p * r + E5
    p = p * r + E4
    p = p * r + E3
    p = p * r + E2
    u = r + r * r * p
    s = np.int32((np.int32(k) + shift + BIAS32) << 23).view(np.float32)  # LLVM narrows to int32
    return u, s


@njit(**OPTS)
def tanh32(x):
    # tanh|x| = E / (E + 2) with E = expm1(2|x|) = 2^k expm1(r) + (2^k - 1), as tanh64
    a = abs(x)
    a = TANH_CLAMP32 if a > TANH_CLAMP32 else a  # written so that NaN passes through
    u, s = reduce_exp32(a + a, np.int32(0))
    e = s * u + (s - ONE32)
    return math.copysign(e / (e + TWO32), x)


@njit(**OPTS)
def sigmoid32(x):
    # E = exp(-|x|) <= 1;  sigmoid(x) = 1 / (1 + E) for x >= 0, E / (1 + E) below: no cancellation
    b = abs(x)
    b = SIGMOID_CLAMP32 if b > SIGMOID_CLAMP32 else b  # NaN passes through
    u, s = reduce_exp32(-b, K_SHIFT32)
    E = (s * u + s) * TWO_M64_32  # 2^-64 last: one rounding into the subnormals
    return (ONE32 if x >= F32(0.0) else E) / (ONE32 + E)


# --- what kernels call: the implementation of the argument's precision ---------------------------
def _by_precision(x, f32, f64):
    """The implementation for numba type ``x``: float32 stays float32, anything else is float64."""
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: f32(x)
    if isinstance(x, (types.Float, types.Integer)):
        return lambda x: f64(np.float64(x))
    return None


def tanh(x):
    """tanh of a float scalar in its own precision (the Python call runs the compiled version)."""
    return (tanh32 if isinstance(x, np.float32) else tanh64)(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) of a float scalar in its own precision."""
    return (sigmoid32 if isinstance(x, np.float32) else sigmoid64)(x)


@overload(tanh, jit_options=INLINE)
def _tanh(x):
    return _by_precision(x, tanh32, tanh64)


@overload(sigmoid, jit_options=INLINE)
def _sigmoid(x):
    return _by_precision(x, sigmoid32, sigmoid64)


def zero(x):
    """0 of ``x``'s own type (a float32 accumulator starts as float32 0, not float64)."""
    return x * 0


def like(x, value):
    """``value`` in ``x``'s own float type: ``like(a[0], 0.5)`` is float32 for a float32 ``a``."""
    return type(x)(value)


def _float_kind(x):
    """The NumPy scalar type of numba float type ``x``, or None."""
    if isinstance(x, types.Float):
        return np.float32 if x.bitwidth == 32 else np.float64
    return None


@overload(zero, jit_options={})
def _zero(x):
    kind = _float_kind(x)
    return None if kind is None else lambda x: kind(0)


@overload(like, jit_options={})
def _like(x, value):
    kind = _float_kind(x)
    return None if kind is None else lambda x, value: kind(value)
