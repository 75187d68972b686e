"""Gradient clipping and the optimizer step over the flat parameter vector, as rnnlab.optim does
them (torch's rules). Compiled without fastmath: the update rounds exactly like NumPy's."""

import math

from numba import njit

EXACT = {"error_model": "numpy", "cache": True}


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
def update(s, theta, g, sa, sb, step, lr):
    """Optimizer step number ``step`` (1-based) with gradients ``g`` and slots ``sa``, ``sb``."""
    momentum, b1, b2, eps, decay = s.momentum, s.beta1, s.beta2, s.eps, s.weight_decay
    kind = s.optimizer
    corr1 = corr2 = 1.0
    if kind == 1:
        corr1 = lr / (1 - b1**step)
        corr2 = math.sqrt(1 - b2**step)
    for i in range(theta.size):
        gi = g[i] + decay * theta[i] if decay != 0.0 else g[i]  # g += weight_decay * p
        if kind == 0:  # sgd: buf = momentum * buf + g;  p -= lr * buf
            if momentum != 0.0:
                sa[i] = sa[i] * momentum + gi
                gi = sa[i]
            theta[i] -= lr * gi
        elif kind == 1:  # adam: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
            sa[i] = sa[i] * b1 + (1 - b1) * gi
            sb[i] = sb[i] * b2 + (1 - b2) * (gi * gi)
            theta[i] -= corr1 * (sa[i] / (math.sqrt(sb[i]) / corr2 + eps))
        else:  # adagrad: sum += g^2;  p -= lr * g / (sqrt(sum) + eps)
            sa[i] += gi * gi
            theta[i] -= lr * (gi / (math.sqrt(sa[i]) + eps))
