"""The numba backend's Linear Recurrent Unit layer, as plugins/rnnlab_numpy/lru.py:

    lambda = exp(-exp(nu_log) + i exp(theta_log))                       [H], |lambda| < 1
    h_t    = lambda * h_{t-1} + exp(gamma_log) * ((B_re + i B_im) x_t)   complex state [R, H]
    y_t    = act(Re((C_re + i C_im) h_t) + D x_t)                        output [R, H]

act: gelu (exact, with erf: numba's math.erf gives the bytes of Python's), tanh, relu or
identity. The complex state is kept as its real and imaginary parts, two float arrays. The
recurrence is linear in h and diagonal: the input projections B x of every step are two
products before the scan, the readout C h + D x three after it; BPTT carries
g = dL/dRe(h) + i dL/dIm(h) back through g_{t-1} += conj(lambda) g_t, elementwise, and the
weight gradients and dx are again products over every step's rows at once. Arrays
time-major ``[T, R, F]``; lengths (``active``) as in rnn.py.

The layer's parameters in the spec's order, ``W = (nu_log, theta_log, gamma_log, B_re, B_im,
C_re, C_im, D)``; ``derived = (lam_re, lam_im, gamma, C_re^T, -C_im^T)`` (``prepare``).
"""

import math

import numpy as np

from .blocks import OPTS, add_outer_steps, add_product_steps, affine_steps
from .jitcache import njit
from .mathfn import like, tanh, zero
from .simd import wide_vectors

GELU, TANH, RELU, IDENTITY = 0, 1, 2, 3
ACTIVATIONS = {"gelu": GELU, "tanh": TANH, "relu": RELU, "identity": IDENTITY}
SQRT2, SQRT2PI = math.sqrt(2.0), math.sqrt(2.0 * math.pi)


@njit(**OPTS)
def prepare(W, derived):
    """``derived``'s lambda (real and imaginary parts), gamma = exp(gamma_log), C_re^T and
    -C_im^T (the forward readout's right-hand factors) from the parameters ``W``."""
    nu, theta, gamma_log, _, _, C_re, C_im, _ = W
    lam_re, lam_im, gamma, CreT, nCimT = derived
    for j in range(nu.size):
        modulus, phase = math.exp(-math.exp(nu[j])), math.exp(theta[j])
        lam_re[j] = modulus * math.cos(phase)
        lam_im[j] = modulus * math.sin(phase)
        gamma[j] = math.exp(gamma_log[j])
    H = C_re.shape[0]
    for j in range(H):
        for k in range(H):
            CreT[k, j] = C_re[j, k]
            nCimT[k, j] = -C_im[j, k]


@njit(**OPTS)
def gelu(a):
    """a Phi(a), Phi the standard normal's distribution function (exact, with erf)."""
    return a * (like(a, 0.5) * (like(a, 1) + like(a, math.erf(a / like(a, SQRT2)))))


@njit(**OPTS)
def gelu_slope(a):
    """d gelu / da = Phi(a) + a phi(a)."""
    phi = like(a, 0.5) * (like(a, 1) + like(a, math.erf(a / like(a, SQRT2))))
    return phi + a * math.exp(like(a, -0.5) * a * a) / like(a, SQRT2PI)


@njit(**OPTS)
def scan_forward(derived, h0, seq, active):
    """The states ``seq = (s_re, s_im, bx_re, bx_im)`` of every step, from the input
    projections in ``bx`` and the state ``h0 = (re, im)``."""
    wide_vectors()
    lam_re, lam_im, gamma = derived[0], derived[1], derived[2]
    s_re, s_im, bx_re, bx_im = seq
    H = s_re.shape[2]
    for t in range(s_re.shape[0]):
        R = active[t]
        if R == 0:
            break
        p_re = s_re[t - 1] if t > 0 else h0[0]
        p_im = s_im[t - 1] if t > 0 else h0[1]
        for r in range(R):
            pr, pi, hr, hi = p_re[r], p_im[r], s_re[t, r], s_im[t, r]
            br, bi = bx_re[t, r], bx_im[t, r]
            for j in range(H):
                lr, li, g = lam_re[j], lam_im[j], gamma[j]
                hr[j] = (lr * pr[j] - li * pi[j]) + g * br[j]
                hi[j] = (lr * pi[j] + li * pr[j]) + g * bi[j]


@njit(**OPTS)
def activate(pre, ys, act, active):
    """ys = act(pre) on the live rows."""
    wide_vectors()
    for t in range(pre.shape[0]):
        for r in range(active[t]):
            a, y = pre[t, r], ys[t, r]
            for j in range(a.size):
                if act == GELU:
                    y[j] = gelu(a[j])
                elif act == TANH:
                    y[j] = tanh(a[j])
                elif act == RELU:
                    y[j] = zero(a[j]) if a[j] < zero(a[j]) else a[j]
                else:
                    y[j] = a[j]


@njit(**OPTS)
def forward(W, derived, x, h0, out, act, active):
    """The layer forward for the rows r < active[t]: ``out = (ys, s_re, s_im, bx_re, bx_im,
    pre)``, the outputs, the states, B x and the readout's pre-activations, from ``h0 = (re,
    im)``."""
    _, _, _, B_re, B_im, _, _, D = W
    ys, s_re, s_im, bx_re, bx_im, pre = out
    nothing = np.zeros(B_re.shape[0], x.dtype)
    affine_steps(B_re, nothing, x, bx_re, active)  # B x of every step at once
    affine_steps(B_im, nothing, x, bx_im, active)
    scan_forward(derived, h0, (s_re, s_im, bx_re, bx_im), active)
    # pre = Re(C h) + D x = s_re C_re^T - s_im C_im^T + x D^T
    affine_steps(D, nothing, x, pre, active)
    add_product_steps(derived[3], s_re, pre, active)
    add_product_steps(derived[4], s_im, pre, active)
    activate(pre, ys, act, active)


@njit(**OPTS)
def output_slope(ys, pre, dys, act, active):
    """dys *= act'(pre) on the live rows: dL/d(pre-activations)."""
    wide_vectors()
    for t in range(pre.shape[0]):
        for r in range(active[t]):
            a, y, d = pre[t, r], ys[t, r], dys[t, r]
            for j in range(a.size):
                if act == GELU:
                    d[j] = d[j] * gelu_slope(a[j])
                elif act == TANH:
                    d[j] = d[j] * (like(y[j], 1) - y[j] * y[j])
                elif act == RELU:
                    d[j] = d[j] if a[j] > zero(a[j]) else zero(a[j])


@njit(**OPTS)
def scan_backward(derived, h0, seq, carry, sums, active):
    """BPTT of the complex state, ``seq = (s_re, s_im, bx_re, bx_im, g_re, g_im)``: ``g``
    holds dL/dh through step t's output and gets the total g_t (through every later step
    too); ``bx`` gets dL/d(B x) = gamma g. ``sums [3, H]`` accumulates sum g conj(h_{t-1})
    (real, imaginary parts) and sum Re(g conj(B x)); ``carry = (re, im)``, ``[R, H]`` each."""
    wide_vectors()
    lam_re, lam_im, gamma = derived[0], derived[1], derived[2]
    s_re, s_im, bx_re, bx_im, g_re, g_im = seq
    c_re, c_im = carry
    H = s_re.shape[2]
    c_re[:, :] = 0
    c_im[:, :] = 0
    for t in range(s_re.shape[0] - 1, -1, -1):
        R = active[t]
        if R == 0:
            continue
        p_re = s_re[t - 1] if t > 0 else h0[0]
        p_im = s_im[t - 1] if t > 0 else h0[1]
        for r in range(R):
            pr, pi, gr, gi = p_re[r], p_im[r], g_re[t, r], g_im[t, r]
            br, bi, cr, ci = bx_re[t, r], bx_im[t, r], c_re[r], c_im[r]
            for j in range(H):
                tr, ti = gr[j] + cr[j], gi[j] + ci[j]
                sums[0, j] += tr * pr[j] + ti * pi[j]
                sums[1, j] += ti * pr[j] - tr * pi[j]
                sums[2, j] += tr * br[j] + ti * bi[j]
                lr, li, g = lam_re[j], lam_im[j], gamma[j]
                cr[j] = lr * tr + li * ti  # conj(lambda) g_t
                ci[j] = lr * ti - li * tr
                gr[j], gi[j] = tr, ti
                br[j], bi[j] = g * tr, g * ti


@njit(**OPTS)
def negate(X, active):
    """X = -X on the live rows of ``X [T, R, F]``."""
    for t in range(X.shape[0]):
        for r in range(active[t]):
            d = X[t, r]
            for j in range(d.size):
                d[j] = -d[j]


@njit(**OPTS)
def backward(P, inp, seq, flow, grads, carry, act, active):
    """Backpropagate ``flow = (dys, need_dx, dx)`` through ``seq = (ys, s_re, s_im, bx_re,
    bx_im, pre, aux)`` (the forward's ``out`` and a ``[T, R, H]`` scratch), ``P = (W,
    derived)``, ``inp = (x, h0)``; add the weight gradients to ``grads`` (ordered as ``W``);
    write ``dx`` if asked. ``dys``, ``bx``, ``pre`` and ``aux`` are overwritten; ``carry =
    (re, im)`` is ``[R, H]`` scratch."""
    (W, derived), (x, h0) = P, inp
    nu, theta, _, B_re, B_im, C_re, C_im, D = W
    ys, s_re, s_im, bx_re, bx_im, pre, aux = seq
    dys, need_dx, dx = flow
    g_nu, g_theta, g_gamma, gB_re, gB_im, gC_re, gC_im, gD = grads
    T, H = x.shape[0], s_re.shape[2]
    dpre = dys[:T]
    output_slope(ys, pre, dpre, act, active)
    add_outer_steps(gC_re, dpre, s_re, active)  # dC_re += dpre^T s_re
    add_outer_steps(gD, dpre, x, active)  # dD += dpre^T x
    if need_dx:
        for t in range(T):
            dx[t, : active[t]] = 0
        add_product_steps(D, dpre, dx, active)  # dx = dpre D
    # g through step t's output: dL/dRe(h) = dpre C_re (into pre), dL/dIm(h) = -dpre C_im
    # (into aux), and dC_im += -dpre^T s_im
    for t in range(T):
        pre[t, : active[t]] = 0
        aux[t, : active[t]] = 0
    add_product_steps(C_re, dpre, pre, active)
    negate(dpre, active)
    add_outer_steps(gC_im, dpre, s_im, active)
    add_product_steps(C_im, dpre, aux, active)
    sums = np.zeros((3, H), s_re.dtype)
    scan_backward(derived, h0, (s_re, s_im, bx_re, bx_im, pre, aux), carry, sums, active)
    lam_re, lam_im, gamma = derived[0], derived[1], derived[2]
    for j in range(H):
        # h_t = lambda h_{t-1} + ...: dL/dmu = conj(lambda) sum g_t conj(h_{t-1}), lambda = e^mu
        # with mu = -exp(nu_log) + i exp(theta_log); u_t = gamma B x_t
        lr, li, s0, s1 = lam_re[j], lam_im[j], sums[0, j], sums[1, j]
        g_nu[j] += (lr * s0 + li * s1) * -math.exp(nu[j])
        g_theta[j] += (lr * s1 - li * s0) * math.exp(theta[j])
        g_gamma[j] += sums[2, j] * gamma[j]
    add_outer_steps(gB_re, bx_re[:T], x, active)  # bx holds dL/d(B x) = gamma g
    add_outer_steps(gB_im, bx_im[:T], x, active)
    if need_dx:
        add_product_steps(B_re, bx_re[:T], dx, active)
        add_product_steps(B_im, bx_im[:T], dx, active)


# -- the layer contract (time-major arrays in and out) ---------------------------------------
def derived_of(W, dtype):
    H = W[0].size
    derived = tuple(np.empty(H, dtype) for _ in range(3))
    derived += (np.empty((H, H), dtype), np.empty((H, H), dtype))
    prepare(W, derived)
    return derived


KEYS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D")


def weights(w):
    return tuple(np.ascontiguousarray(w[k]) for k in KEYS)


def layer_forward(w, x, state0, active, nonlinearity="gelu"):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)`` (complex), step t on the
    rows ``[:active[t]]``; return ``ys``, the states of every step ``(h,)`` (complex) and the
    cache."""
    x = np.ascontiguousarray(x)
    T, N, _ = x.shape
    W = weights(w)
    H = W[0].size
    h0 = (np.ascontiguousarray(state0[0].real), np.ascontiguousarray(state0[0].imag))
    out = tuple(np.zeros((T, N, H), x.dtype) for _ in range(6))
    act = ACTIVATIONS[nonlinearity]
    derived = derived_of(W, x.dtype)
    forward(W, derived, x, h0, out, act, active)
    states = out[1] + 1j * out[2]
    return out[0], (states.astype(state0[0].dtype),), (x, h0, out, act, active)


def _backward(w, cache, dhs):
    """The layer's gradients, ``dx [T, N, I]`` and the backward's sequence buffers (``seq``
    of :func:`backward`: its ``pre`` and ``aux`` hold the real and imaginary parts of g_t, the
    total gradient of the state, on the live rows)."""
    x, h0, out, act, active = cache
    W = weights(w)
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    dx = np.zeros_like(x)
    flow = (np.array(dhs, order="C", dtype=x.dtype), True, dx)  # a copy: backward overwrites it
    seq = tuple(a.copy() for a in out) + (np.zeros_like(out[0]),)
    g = tuple(grads[k] for k in KEYS)
    carry = (np.empty_like(h0[0]), np.empty_like(h0[0]))
    backward((W, derived_of(W, x.dtype)), (x, h0), seq, flow, g, carry, act, active)
    return grads, dx, seq


def layer_backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    return _backward(w, cache, dhs)[:2]


def state_gradients(w, cache, dhs):
    """g_t = dL/dRe(h_t) + i dL/dIm(h_t) at every step (through the outputs of step t and every
    later step), complex ``[T, N, H]``, 0 at padded steps: the backward's own scan."""
    x, active = cache[0], cache[4]
    seq = _backward(w, cache, dhs)[2]
    T, N = x.shape[:2]
    live = (np.arange(N)[None, :] < np.asarray(active)[:T, None])[..., None]
    totals = np.zeros(seq[5].shape, np.result_type(x.dtype, np.complex64))
    totals.real, totals.imag = seq[5], seq[6]
    return np.where(live, totals, 0).astype(totals.dtype, copy=False)
