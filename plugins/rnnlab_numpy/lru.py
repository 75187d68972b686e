"""Linear Recurrent Unit layer (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences"): a complex diagonal linear recurrence and a real readout.

    lambda = exp(-exp(nu_log) + i exp(theta_log))                       [H], |lambda| < 1
    h_t    = lambda * h_{t-1} + exp(gamma_log) * ((B_re + i B_im) x_t)   complex state [N, H]
    y_t    = act(Re((C_re + i C_im) h_t) + D x_t)                        output [N, H]

act: gelu (exact, with erf; default), tanh, relu or identity. Gradients of the complex state
are carried as g = dL/dRe(h) + i dL/dIm(h); through h_t = lambda h_{t-1} that is
g_{t-1} += conj(lambda) g_t. With ``lengths`` (see :mod:`.masking`) a finished sequence keeps
its state and outputs 0.
"""

import math

import numpy as np

from .masking import ignore_padding, select_input

_ERF = np.frompyfunc(math.erf, 1, 1)
_SQRT2, _SQRT2PI = math.sqrt(2.0), math.sqrt(2.0 * math.pi)


def erf(a: np.ndarray) -> np.ndarray:
    """The error function, elementwise, to the precision of math.erf."""
    return _ERF(a.astype(np.float64)).astype(a.dtype)


def activate(a: np.ndarray, nonlinearity: str) -> np.ndarray:
    if nonlinearity == "gelu":  # a * Phi(a), Phi the standard normal's distribution function
        return a * (0.5 * (1.0 + erf(a / _SQRT2)))
    if nonlinearity == "tanh":
        return np.tanh(a)
    if nonlinearity == "relu":
        return np.maximum(a, 0)
    return a


def derivative(a: np.ndarray, y: np.ndarray, nonlinearity: str) -> np.ndarray:
    if nonlinearity == "gelu":  # Phi(a) + a phi(a)
        return 0.5 * (1.0 + erf(a / _SQRT2)) + a * np.exp(-0.5 * a * a) / _SQRT2PI
    if nonlinearity == "tanh":
        return 1.0 - y * y
    if nonlinearity == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


def eigenvalues(w) -> np.ndarray:
    """lambda, complex ``[H]`` in the parameters' precision."""
    return np.exp(-np.exp(w["nu_log"]) + 1j * np.exp(w["theta_log"]))


def forward(w, x, state0, nonlinearity="gelu", lengths=None):
    """Run the layer over ``x [T, N, I]`` from ``state0 = (h0,)`` (complex)."""
    (h,) = state0
    valid, x = select_input(x, lengths)
    lam, gamma = eigenvalues(w), np.exp(w["gamma_log"])
    bx = x @ w["B_re"].T + 1j * (x @ w["B_im"].T)
    u = gamma * bx
    states = np.empty(u.shape, dtype=u.dtype)  # h_t, held after a sequence's end
    for t in range(x.shape[0]):
        h_t = lam * h + u[t]
        h = h_t if valid is None else np.where(valid[t], h_t, h)
        states[t] = h
    pre = states.real @ w["C_re"].T - states.imag @ w["C_im"].T + x @ w["D"].T
    ys = activate(pre, nonlinearity)
    if valid is not None:
        ys = np.where(valid, ys, 0).astype(ys.dtype, copy=False)
    return ys, (h,), (x, states, bx, pre, ys, state0[0], nonlinearity, valid)


def _bptt(w, cache, dhs):
    x, states, bx, pre, ys, h0, nonlinearity, valid = cache
    dys = ignore_padding(dhs, valid)
    H, I = states.shape[-1], x.shape[-1]
    lam, gamma = eigenvalues(w), np.exp(w["gamma_log"])
    dpre = dys * derivative(pre, ys, nonlinearity)
    flat, x2 = dpre.reshape(-1, H), x.reshape(-1, I)
    grads = {
        "C_re": flat.T @ states.real.reshape(-1, H),
        "C_im": -(flat.T @ states.imag.reshape(-1, H)),
        "D": flat.T @ x2,
    }
    dx = dpre @ w["D"]
    direct = dpre @ w["C_re"] - 1j * (dpre @ w["C_im"])  # dL/dRe(h) + i dL/dIm(h), at step t
    total = np.empty_like(states)  # the same through step t and every later step
    carry = np.zeros_like(states[0])
    back = np.conj(lam)
    for t in range(x.shape[0] - 1, -1, -1):
        total[t] = direct[t] + carry
        carry = back * total[t]
    h_prev = np.concatenate([h0[None], states[:-1]], axis=0)
    # h_t = lambda h_{t-1} + u_t: dL/dlambda = sum_t g_t conj(h_{t-1}); lambda = exp(mu)
    d_mu = back * np.einsum("tnh,tnh->h", total, np.conj(h_prev))
    grads["nu_log"] = (d_mu.real * -np.exp(w["nu_log"])).astype(x.dtype)
    grads["theta_log"] = (d_mu.imag * np.exp(w["theta_log"])).astype(x.dtype)
    # u_t = gamma * bx_t
    d_gamma = np.einsum("tnh,tnh->h", total.real, bx.real) + np.einsum(
        "tnh,tnh->h", total.imag, bx.imag
    )
    grads["gamma_log"] = (d_gamma * gamma).astype(x.dtype)
    d_bx = gamma * total
    grads["B_re"] = d_bx.real.reshape(-1, H).T @ x2
    grads["B_im"] = d_bx.imag.reshape(-1, H).T @ x2
    dx = dx + d_bx.real @ w["B_re"] + d_bx.imag @ w["B_im"]
    order = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D")
    return {k: grads[k] for k in order}, dx, total


def backward(w, cache, dhs):
    """Backpropagate ``dhs [T, N, H]``; return the layer's gradients and ``dx [T, N, I]``."""
    return _bptt(w, cache, dhs)[:2]


def state_gradients(w, cache, dhs):
    """g_t = dL/dRe(h_t) + i dL/dIm(h_t) at every step (through the outputs of step t and every
    later step), complex ``[T, N, H]``."""
    return _bptt(w, cache, dhs)[2]
