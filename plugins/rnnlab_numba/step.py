"""Gradient clipping and the optimizer step over the flat parameter vector, as rnnlab.optim does
them (torch's rules). Compiled without fastmath: the update rounds exactly like NumPy's.

``fastmath: False`` must be said: numba gives a callee that does not set an option its caller's
(``Flags.inherit_if_not_set``), so these functions, compiled first as callees of the fastmath
epoch kernel, got fused multiply-adds and differed from NumPy in the last bit (seen as
``theta - lr * g`` one ulp off).
"""

import math

from numba import njit

EXACT = {"fastmath": False, "error_model": "numpy", "cache": True}


@njit(**EXACT)
def clip(s, g):
    """norm: g *= value / (||g|| + 1e-6) when that is < 1;  value: g = clip(g, -value, value)."""
    value = s.clip_value
    if s.clip == 1:
        sq = 0.0
        for i in range(g.size):
            sq += g[i] * g[i]
        c = value / (math.sqrt(sq) + 1e-6)
        if c < 1.0:
            for i in range(g.size):
                g[i] *= c
    elif s.clip == 2:
        for i in range(g.size):
            g[i] = min(max(g[i], -value), value)


@njit(**EXACT)
def clip_update(s, theta, g, sa, sb, step, lr):
    """Clipping, then optimizer step number ``step``: in one pass over the parameters when
    clipping by value without weight decay (each gradient clipped where the update reads it:
    the same numbers as clipping first, one sweep of the ~30k parameters fewer per chunk at
    min-char-rnn's settings), else ``clip`` first."""
    lo, hi = -math.inf, math.inf  # min(max(g, -inf), inf) is g, NaN and -0.0 included
    if s.clip == 2 and s.weight_decay == 0.0:
        lo, hi = -s.clip_value, s.clip_value
    else:
        clip(s, g)
    update(s, theta, g, sa, sb, step, lr, lo, hi)


@njit(**EXACT)
def update(s, theta, g, sa, sb, step, lr, lo, hi):
    """Optimizer step number ``step`` (1-based) with gradients ``g`` clipped to [lo, hi]
    (weight decay is added to them in place) and slots ``sa``, ``sb``. One loop per
    optimizer, free of branches, so that each vectorises (at min-char-rnn's sizes the update
    is a sixth of a chunk's time)."""
    momentum, b1, b2, eps, decay = s.momentum, s.beta1, s.beta2, s.eps, s.weight_decay
    if decay != 0.0:  # g += weight_decay * p
        for i in range(theta.size):
            g[i] = min(max(g[i], lo), hi) + decay * theta[i]
    if s.optimizer == 0:  # sgd: buf = momentum * buf + g;  p -= lr * buf
        if momentum != 0.0:
            for i in range(theta.size):
                sa[i] = sa[i] * momentum + min(max(g[i], lo), hi)
                theta[i] -= lr * sa[i]
        else:
            for i in range(theta.size):
                theta[i] -= lr * min(max(g[i], lo), hi)
    elif s.optimizer == 1:  # adam: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        corr1 = lr / (1 - b1**step)
        corr2 = math.sqrt(1 - b2**step)
        for i in range(theta.size):
            gi = min(max(g[i], lo), hi)
            sa[i] = sa[i] * b1 + (1 - b1) * gi
            sb[i] = sb[i] * b2 + (1 - b2) * (gi * gi)
            theta[i] -= corr1 * (sa[i] / (math.sqrt(sb[i]) / corr2 + eps))
    else:  # adagrad: sum += g^2;  p -= lr * g / (sqrt(sum) + eps)
        for i in range(theta.size):
            gi = min(max(g[i], lo), hi)
            sa[i] += gi * gi
            theta[i] -= lr * (gi / (math.sqrt(sa[i]) + eps))
