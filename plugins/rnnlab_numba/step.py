"""Gradient clipping and the optimizer step over the flat parameter vector, as rnnlab.nn.optim does
them (torch's rules). Compiled without fastmath: the update rounds exactly like NumPy's.

``fastmath: False`` must be said: numba gives a callee that does not set an option its caller's
(``Flags.inherit_if_not_set``), so these functions, compiled first as callees of the fastmath
epoch kernel, got fused multiply-adds and differed from NumPy in the last bit (seen as
``theta - lr * g`` one ulp off).
"""

import math

from .jitcache import njit
from .layout import ADAGRAD, ADAM, CLIP_NORM, CLIP_VALUE, SGD

EXACT = {"fastmath": False, "error_model": "numpy", "cache": True}


@njit(**EXACT)
def clip(s, g):
    """norm: g *= value / (||g|| + 1e-6) when that is < 1;  value: g = clip(g, -value, value)."""
    value = s.clip_value
    if s.clip == CLIP_NORM:
        sq = 0.0
        for i in range(g.size):
            sq += g[i] * g[i]
        c = value / (math.sqrt(sq) + 1e-6)
        if c < 1.0:
            for i in range(g.size):
                g[i] *= c
    elif s.clip == CLIP_VALUE:
        for i in range(g.size):
            g[i] = min(max(g[i], -value), value)


@njit(**EXACT)
def clip_update(s, theta, g, slots, step):
    """Clipping, then optimizer step number ``step`` with the optimizer's ``slots``
    (layout.Slots: sa, sb and the learning rate lr; its ``steps`` unused): in one pass over
    the parameters when clipping by value without weight decay (each gradient clipped where
    the update reads it: the same numbers as clipping first, one sweep of the ~30k parameters
    fewer per chunk at min-char-rnn's settings), else ``clip`` first."""
    lo, hi = -math.inf, math.inf  # min(max(g, -inf), inf) is g, NaN and -0.0 included
    if s.clip == CLIP_VALUE and s.weight_decay == 0.0:
        lo, hi = -s.clip_value, s.clip_value
    else:
        clip(s, g)
    update(s, theta, g, slots, step, (lo, hi))


@njit(**EXACT)
def update(s, theta, g, slots, step, bounds):
    """Optimizer step number ``step`` (1-based) with gradients ``g`` clipped to ``bounds = (lo,
    hi)`` (weight decay is added to them in place) and ``slots``' sa, sb, lr. One loop per
    optimizer, free of branches, so that each vectorises (at min-char-rnn's sizes the update
    is a sixth of a chunk's time)."""
    momentum, b1, b2, eps, decay = s.momentum, s.beta1, s.beta2, s.eps, s.weight_decay
    sa, sb, lr = slots.sa, slots.sb, slots.lr
    lo, hi = bounds
    if decay != 0.0:  # g += weight_decay * p
        for i in range(theta.size):
            g[i] = min(max(g[i], lo), hi) + decay * theta[i]
    if s.optimizer == SGD:  # buf = momentum * buf + g;  p -= lr * buf
        if momentum != 0.0:
            for i in range(theta.size):
                sa[i] = sa[i] * momentum + min(max(g[i], lo), hi)
                theta[i] -= lr * sa[i]
        else:
            for i in range(theta.size):
                theta[i] -= lr * min(max(g[i], lo), hi)
    elif s.optimizer == ADAM:  # p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        corr1 = lr / (1 - b1**step)
        corr2 = math.sqrt(1 - b2**step)
        for i in range(theta.size):
            gi = min(max(g[i], lo), hi)
            sa[i] = sa[i] * b1 + (1 - b1) * gi
            sb[i] = sb[i] * b2 + (1 - b2) * (gi * gi)
            theta[i] -= corr1 * (sa[i] / (math.sqrt(sb[i]) / corr2 + eps))
    else:  # adagrad: sum += g^2;  p -= lr * g / (sqrt(sum) + eps)
        adagrad(theta, g, sa, lr, eps, lo, hi)


@njit(**EXACT)
def adagrad(theta, g, sa, lr, eps, lo, hi):
    """Adagrad's step on every parameter of ``theta`` (one vectorised loop)."""
    for i in range(theta.size):
        gi = min(max(g[i], lo), hi)
        sa[i] += gi * gi
        theta[i] -= lr * (gi / (math.sqrt(sa[i]) + eps))


@njit(**EXACT)
def clip_update_cols(s, theta, g, slots, step, hot):
    """``clip_update``, for a caller that knows the gradient of the ``[J, K]`` matrix at
    ``theta[o:]`` to be exactly +0.0 (all bits zero) outside its ``n`` columns ``cols[:n]``,
    ``hot = (o, J, K, cols, n)``:
    with Adagrad the parameters of the other columns are skipped when ``zero_steps_exact``
    says their step leaves them as they are (else clip_update). The caller (epoch.py) passes
    a one-hot first layer's W_ih and the characters of the batch; it also promises that the
    skipped parameters' sums are +0.0, positive or +inf, or NaN with the parameter NaN (its
    check at the start of the epoch; the steps keep it: a sum turns NaN only with a NaN
    gradient, which turns the parameter NaN in the same step).

    Why: at min-char-rnn's settings a chunk of 25 characters has about 15 distinct ones, so
    85% of W_ih (a third of the parameters) has an exactly zero gradient, and Adagrad's sqrt
    and division, which share one divider, bounded the update (36 us of a 160 us chunk)."""
    o, J, K, cols, n = hot
    sa, lr = slots.sa, slots.lr
    lo, hi = -math.inf, math.inf
    if s.clip == CLIP_VALUE:
        lo, hi = -s.clip_value, s.clip_value
    if (
        s.optimizer != ADAGRAD
        or s.clip == CLIP_NORM
        or not zero_steps_exact(lr, s.eps, lo, hi, s.weight_decay)
    ):
        clip_update(s, theta, g, slots, step)
        return
    eps, end = s.eps, o + J * K
    adagrad(theta[:o], g[:o], sa[:o], lr, eps, lo, hi)
    for j in range(J):
        row = o + j * K
        for m in range(n):
            i = row + cols[m]
            gi = min(max(g[i], lo), hi)
            sa[i] += gi * gi
            theta[i] -= lr * (gi / (math.sqrt(sa[i]) + eps))
    adagrad(theta[end:], g[end:], sa[end:], lr, eps, lo, hi)


@njit(**EXACT)
def zero_steps_exact(lr, eps, lo, hi, decay):
    """Whether Adagrad's step, as ``update`` computes it, leaves a parameter p and its sum s
    exactly as they are, bit for bit, when p's gradient is +0.0 and s is +0.0, positive or +inf
    (or NaN with p NaN).

    Why each condition: the clipped gradient min(max(+0.0, lo), hi) must be +0.0 (asked here:
    lo <= 0 <= hi does not settle the sign); then s + 0.0 * 0.0 is s; sqrt(s) + eps > 0 when
    eps > 0 (+inf included), so the quotient is +0.0 and lr * +0.0 is +0.0 for a finite lr > 0
    (a negative or -0.0 rate gives -0.0, which would move a -0.0 parameter to +0.0; an infinite
    one NaN); p - +0.0 is p, -0.0 included. With s and p NaN, p - lr * (0 / NaN) is p's NaN (the
    first operand's NaN propagates) and s + 0 is s. Weight decay moves the gradient: no skip."""
    gz = min(max(0.0, lo), hi)
    return (
        decay == 0.0
        and eps > 0.0
        and 0.0 < lr < math.inf
        and gz == 0.0
        and not math.copysign(1.0, gz) < 0.0
    )


@njit(**EXACT)
def sums_settled(theta, sums, lo, hi):
    """Whether every Adagrad sum of ``theta[lo:hi]`` is +0.0, positive or +inf and every
    parameter there a number: what step.clip_update_cols asks of the parameters it may skip
    (checked once per epoch: the steps keep it, see there)."""
    for i in range(lo, hi):
        s = sums[i]
        if not (s <= math.inf and math.copysign(1.0, s) > 0.0 and theta[i] == theta[i]):
            return False
    return True
