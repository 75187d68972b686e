"""PyTorch implementations of the cells PyTorch does not have (mingru, minlstm, indrnn, lru),
written from their equations (docs/cells.md) with plain torch ops and autograd, as a PyTorch user
would: the input projections of all steps as one product, a Python loop over time for the
recurrence, parameters named as rnnlab names them (``weight_ih``, ``nu_log``...).

- mingru: ``z, h~ = sigmoid(W_z x + b_z), W_h x + b_h``; ``h = (1 - z) h + z h~``
- minlstm: ``f, i = sigmoid(.)``, ``h~ = W_h x + b_h``; ``h = f/(f+i) h + i/(f+i) h~``
- indrnn: ``h = act(W x + b + u h)``
- lru: ``lambda = exp(-exp(nu_log) + i exp(theta_log))``, ``h = lambda h + exp(gamma_log)
  ((B_re + i B_im) x)`` (complex), ``y = act(Re((C_re + i C_im) h) + D x)``
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CELLS = ("mingru", "minlstm", "indrnn", "lru")


def activation(name: str):
    return {
        "tanh": torch.tanh,
        "relu": torch.relu,
        "gelu": F.gelu,  # exact (erf), as rnnlab's
        "identity": lambda a: a,
    }[name]


class Layer(torch.nn.Module):
    """One direction of one layer of ``cell``; ``forward(x [T, N, I]) -> hs [T, N, H]``."""

    def __init__(self, cell: str, weights: dict[str, np.ndarray], nonlinearity: str):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"no PyTorch implementation of {cell!r} here ({', '.join(CELLS)})")
        self.cell, self.act = cell, activation(nonlinearity)
        for key, value in weights.items():
            self.register_parameter(key, torch.nn.Parameter(torch.from_numpy(value.copy())))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"_{self.cell}")(x)

    def _mingru(self, x):
        z, cand = (x @ self.weight_ih.T + self.bias_ih).chunk(2, dim=-1)
        z = torch.sigmoid(z)
        h, hs = torch.zeros_like(z[0]), []
        for t in range(x.shape[0]):
            h = (1 - z[t]) * h + z[t] * cand[t]
            hs.append(h)
        return torch.stack(hs)

    def _minlstm(self, x):
        f, i, cand = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=-1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        s = f + i
        f, i = f / s, i / s
        h, hs = torch.zeros_like(f[0]), []
        for t in range(x.shape[0]):
            h = f[t] * h + i[t] * cand[t]
            hs.append(h)
        return torch.stack(hs)

    def _indrnn(self, x):
        xw = x @ self.weight_ih.T + self.bias_ih
        h, hs = torch.zeros_like(xw[0]), []
        for t in range(x.shape[0]):
            h = self.act(xw[t] + self.weight_hh * h)
            hs.append(h)
        return torch.stack(hs)

    def _lru(self, x):
        lam = torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        u = torch.exp(self.gamma_log) * torch.complex(x @ self.B_re.T, x @ self.B_im.T)
        h, hs = torch.zeros_like(u[0]), []
        for t in range(x.shape[0]):
            h = lam * h + u[t]
            hs.append(h)
        hs = torch.stack(hs)
        return self.act(hs.real @ self.C_re.T - hs.imag @ self.C_im.T + x @ self.D.T)
