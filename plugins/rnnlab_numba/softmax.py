"""Softmax cross-entropy of one output row, its exponentials vectorised.

Why: ``math.exp`` inside ``@njit`` is a scalar library call, about as slow per element as
``np.tanh`` there (mathfn.py), and a char model's head takes a V-wide softmax at every step: at
min-char-rnn's settings (V about 100, 25 steps per chunk) the 2,500 exponentials were a
fifteenth of a chunk's time. ``exp_nonpositive`` is branch-free (range reduction and a
polynomial, mathfn's constants), so the loop over a row vectorises.

Accuracy: float64 within 2 ulp of ``math.exp`` (degree-14 Taylor polynomial of expm1 on
|r| <= ln2 / 2, error below 1e-17, then one scaling by 2^k); float32 by mathfn's float32
reduction (within 2 ulp). Below the smallest normal result the exponential is 0 (the reference
gives a subnormal that the kernels' flush-to-zero would drop anyway, fpenv.py). NaN passes.
"""

import math

import numpy as np
from numba.extending import overload

from . import mathfn as mf
from .jitcache import njit

OPTS = {"fastmath": {"contract"}, "error_model": "numpy", "cache": True}
INLINE = {"fastmath": {"contract"}, "error_model": "numpy"}  # overloads: cached in callers
NORMAL64 = -708.0  # exp(-708) = 3.3e-308 is normal; 2^k is built from its bits for k >= -1022
NORMAL32 = np.float32(-87.0)  # exp(-87) = 1.6e-38 is normal (k >= -126)
ZERO32 = np.float32(0.0)


@njit(**OPTS)
def exp_nonpositive64(t):
    a = NORMAL64 if t < NORMAL64 else t  # written so that NaN passes through
    # a = k ln2 + r, |r| <= ln2 / 2;  exp(a) = 2^k (1 + expm1(r))
    k = math.floor(a * mf.INV_LN2 + 0.5)
    r = (a - k * mf.LN2_HI) - k * mf.LN2_LO
    p = mf.C14
    p = p * r + mf.C13
    p = p * r + mf.C12
    p = p * r + mf.C11
    p = p * r + mf.C10
    p = p * r + mf.C9
    p = p * r + mf.C8
    p = p * r + mf.C7
    p = p * r + mf.C6
    p = p * r + mf.C5
    p = p * r + mf.C4
    p = p * r + mf.C3
    p = p * r + mf.C2
    u = r + r * r * p
    s = np.int64((np.int64(k) + np.int64(1023)) << np.int64(52)).view(np.float64)
    e = s * u + s
    return 0.0 if t < NORMAL64 else e


@njit(**OPTS)
def exp_nonpositive32(t):
    a = NORMAL32 if t < NORMAL32 else t  # NaN passes through
    u, s = mf.reduce_exp32(a, np.int32(0))
    e = s * u + s
    return ZERO32 if t < NORMAL32 else e


def exp_nonpositive(x):
    """exp(x) for x <= 0 in x's own precision (0 below the normal range)."""
    return (exp_nonpositive32 if isinstance(x, np.float32) else exp_nonpositive64)(x)


@overload(exp_nonpositive, jit_options=INLINE)
def _exp_nonpositive(x):
    return mf._by_precision(x, exp_nonpositive32, exp_nonpositive64)


@njit(**OPTS)
def fixed_sum(a):
    """The sum of ``a`` in one fixed order, in float64: eight running sums (element i goes to
    sum i mod 8), added pairwise, then the last ``a.size mod 8`` elements in order.

    Why not a plain loop under ``reassoc``: LLVM then picks the order, and it picked
    differently for the same source in a freshly compiled process and one that loaded numba's
    cache (a char model's weights differed after one chunk, and whole runs diverged). The eight
    sums are independent chains, so they still run as one vector."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n = a.size - a.size % 8
    for i in range(0, n, 8):
        s0 += a[i]
        s1 += a[i + 1]
        s2 += a[i + 2]
        s3 += a[i + 3]
        s4 += a[i + 4]
        s5 += a[i + 5]
        s6 += a[i + 6]
        s7 += a[i + 7]
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for i in range(n, a.size):
        total += a[i]
    return total


@njit(**OPTS)
def xent_row(out, label, coef):
    """-log softmax(out)[label]; ``out`` becomes dL/d(out) = (softmax(out) - onehot(label))
    * coef. As rnnlab.nn.model's loss: softmax = e / sum(e) with e = exp(out - max(out)), the sum
    in a fixed order (fixed_sum: the same bits from a fresh compile and from the cache)."""
    m = out[0]
    for o in range(1, out.size):
        m = max(m, out[o])
    z = out[label]
    for o in range(out.size):  # e = exp(out - max), vectorised (no sum in this loop)
        out[o] = exp_nonpositive(out[o] - m)
    total = fixed_sum(out)
    loss = -(z - m - math.log(total))
    scale = coef / total
    for o in range(out.size):
        out[o] *= scale
    out[label] -= coef
    return loss
