"""Optimizers and gradient clipping, with PyTorch's update rules (torch.optim.SGD/Adam/Adagrad,
torch.nn.utils.clip_grad_norm_/clip_grad_value_). Updates happen in place; the state is plain
arrays so that a backend can run the same update in compiled code and a checkpoint can save it."""

from __future__ import annotations

import math

import numpy as np

from ..experiment.schema import TrainConfig

SLOTS = {"sgd": ("momentum_buffer",), "adam": ("exp_avg", "exp_avg_sq"), "adagrad": ("sum",)}


class Optimizer:
    """One of sgd / adam / adagrad over a dict of parameters."""

    def __init__(self, cfg: TrainConfig, params: dict[str, np.ndarray]):
        self.kind = cfg.optimizer
        self.momentum, self.beta1, self.beta2 = cfg.momentum, cfg.beta1, cfg.beta2
        self.eps, self.weight_decay = cfg.eps, cfg.weight_decay
        self.steps = 0
        self.slots = {
            name: {s: np.zeros_like(p) for s in SLOTS[self.kind]} for name, p in params.items()
        }

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float):
        self.steps += 1
        t = self.steps
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            slot = self.slots[name]
            if self.kind == "sgd":
                if self.momentum:
                    buf = slot["momentum_buffer"]
                    buf *= self.momentum  # buf = momentum * buf + g (buf starts at zero)
                    buf += g
                    g = buf
                p -= lr * g
            elif self.kind == "adam":
                m, v = slot["exp_avg"], slot["exp_avg_sq"]
                m *= self.beta1
                m += (1 - self.beta1) * g
                v *= self.beta2
                v += (1 - self.beta2) * (g * g)
                # p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
                denom = np.sqrt(v) / math.sqrt(1 - self.beta2**t) + self.eps
                p -= (lr / (1 - self.beta1**t)) * (m / denom)
            else:  # adagrad: sum += g^2; p -= lr * g / (sqrt(sum) + eps)
                acc = slot["sum"]
                acc += g * g
                p -= lr * (g / (np.sqrt(acc) + self.eps))

    def state_dict(self) -> dict:
        return {"steps": self.steps, "slots": self.slots}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        for name, slots in state["slots"].items():
            for s, arr in slots.items():
                self.slots[name][s][...] = arr


def clip_gradients(grads: dict[str, np.ndarray], mode: str, value: float) -> float:
    """Clip in place; return the global L2 norm before clipping.

    norm:  g *= min(1, value / (||g||_2 + 1e-6)) over all gradients together
    value: g = clip(g, -value, value)
    """
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if mode == "norm":
        coef = value / (total + 1e-6)
        if coef < 1.0:
            for g in grads.values():
                g *= coef
    elif mode == "value":
        for g in grads.values():
            np.clip(g, -value, value, out=g)
    return total


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The step size of a 0-based epoch: constant, or cosine from lr down to 0 over the run."""
    if cfg.schedule == "cosine":
        return cfg.learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
    return cfg.learning_rate
