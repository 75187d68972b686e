"""What the fused-epoch tests of the numba backend share (fixed and variable lengths): the
training plans they run, their setup, and the check that two trainings end in the same state."""

from __future__ import annotations

import numpy as np

from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Shape, init_params
from rnnlab.nn.optim import Optimizer
from rnnlab.training.session import EpochPlan

FUSED_PLANS = [
    # (model, train, loss, target)
    (dict(), dict(optimizer="adam", grad_clip="norm", grad_clip_value=0.05), "mse", "last"),
    (
        dict(layers=2, nonlinearity="relu"),
        dict(
            optimizer="sgd",
            momentum=0.9,
            weight_decay=0.01,
            grad_clip="value",
            grad_clip_value=0.01,
        ),
        "mse",
        "every",
    ),
    (
        dict(layers=2),
        dict(optimizer="adagrad", grad_clip="none", weight_decay=0.1),
        "xent",
        "every",
    ),
]


def epoch_plan(model, train, loss, target, dtype="float64", **fields):
    """The plan of one of :data:`FUSED_PLANS`: hidden size 6, batches of 4, learning rate 0.05."""
    cfg = ModelConfig(hidden_size=6, dtype=dtype, **model)
    train = TrainConfig(batch_size=4, learning_rate=0.05, **train)
    return EpochPlan(cfg, train, loss, target, **fields)


def twin_params(plan, n_in, n_out, rng):
    """``params, opt, ref_params, ref_opt``: fresh parameters drawn from ``rng``, an equal copy
    for the reference to train, and an optimizer for each."""
    params = init_params(plan.model, Shape(n_in, n_out), rng)
    ref_params = {k: v.copy() for k, v in params.items()}
    return params, Optimizer(plan.train, params), ref_params, Optimizer(plan.train, ref_params)


def assert_same_state(params, opt, ref_params, ref_opt, rtol):
    """Both trainings ended with the same parameters (and dtypes) and optimizer slots, within
    ``rtol``."""
    for name, p in ref_params.items():
        assert params[name].dtype == p.dtype
        np.testing.assert_allclose(
            params[name], p, rtol=rtol, atol=rtol * np.abs(p).max(), err_msg=name
        )
        for slot, arr in ref_opt.slots[name].items():
            np.testing.assert_allclose(
                opt.slots[name][slot],
                arr,
                rtol=rtol,
                atol=rtol * (np.abs(arr).max() + 1e-30),
                err_msg=slot,
            )
