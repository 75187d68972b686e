"""Optimizers and clipping follow PyTorch's rules."""

import numpy as np
import pytest

from rnnlab.experiment.schema import TrainConfig
from rnnlab.nn.optim import Optimizer, clip_gradients, learning_rate


def run(kind, steps=3, **kw):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(steps)]
    params = {"w": p0.copy()}
    opt = Optimizer(TrainConfig(optimizer=kind, **kw), params)
    for g in grads:
        opt.step(params, {"w": g.copy()}, 0.1)
    return p0, grads, params["w"], opt


def test_sgd_momentum_by_hand():
    p0, grads, p, _ = run("sgd", momentum=0.9)
    buf, expect = np.zeros_like(p0), p0.copy()
    for g in grads:
        buf = 0.9 * buf + g
        expect -= 0.1 * buf
    np.testing.assert_allclose(p, expect, rtol=1e-15)


@pytest.mark.parametrize(
    "kind,kw",
    [
        ("sgd", {"momentum": 0.9, "weight_decay": 0.01}),
        ("adam", {"weight_decay": 0.01}),
        ("adagrad", {}),
    ],
)
def test_matches_torch(kind, kw):
    torch = pytest.importorskip("torch")
    p0, grads, p, _ = run(kind, **kw)
    w = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}[kind]
    extra = {"eps": 1e-8} if kind != "sgd" else {}
    opt = cls([w], lr=0.1, **kw, **extra)
    for g in grads:
        w.grad = torch.from_numpy(g.copy())
        opt.step()
    np.testing.assert_allclose(p, w.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_clip_by_global_norm_and_value():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}
    assert clip_gradients(grads, "norm", 1.0) == 5.0
    total = np.sqrt(sum((g**2).sum() for g in grads.values()))
    assert abs(total - 5.0 / (5.0 + 1e-6)) < 1e-12
    small = {"a": np.array([0.3, -0.4])}
    clip_gradients(small, "norm", 1.0)
    np.testing.assert_array_equal(small["a"], [0.3, -0.4])
    values = {"a": np.array([-2.0, 0.5, 3.0])}
    clip_gradients(values, "value", 1.0)
    np.testing.assert_array_equal(values["a"], [-1.0, 0.5, 1.0])


def test_cosine_schedule_starts_at_lr_and_decays():
    cfg = TrainConfig(learning_rate=0.1, epochs=10, schedule="cosine")
    rates = [learning_rate(cfg, e) for e in range(10)]
    assert rates[0] == 0.1 and all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert learning_rate(TrainConfig(learning_rate=0.1), 5) == 0.1
