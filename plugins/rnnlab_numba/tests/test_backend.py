"""The numba backend: its kernels and its fused epoch match the NumPy reference."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Model
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.testing import check_training_agreement, reference_backend
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import EpochPlan
from tests.support.epoch_checks import FUSED_PLANS, assert_same_state, epoch_plan, twin_params
from tests.support.paths import EXPERIMENTS

pytest.importorskip("numba")

SINE = EXPERIMENTS / "sine.toml"


@pytest.fixture(scope="module")
def backend():
    return Registry().backend("numba").load()


# check_backend(numba) (gradients against finite differences, agreement with the reference,
# inert padding): tests/api/test_builtin_conformance.py, test_backend_conforms[numba]


def test_plugin_import_does_not_import_numba():
    code = (
        "import sys; from rnnlab.registry.manager import Registry; r = Registry(); "
        "assert r.backends['numba'].unavailable() is None; "
        "assert 'numba' not in sys.modules, 'numba imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unavailable_when_numba_is_missing(monkeypatch):
    import importlib.util

    import rnnlab_numba

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real(name, *a)
    )
    assert "numba is not installed" in rnnlab_numba._unavailable()
    registry = Registry()
    from rnnlab.training.compare import with_backend
    from rnnlab.training.session import load_backend

    exp = with_backend(_sine(registry, []), "numba")
    with pytest.raises(ConfigError, match="unavailable here: numba is not installed"):
        load_backend(exp, registry)


def test_fast_tanh_matches_numpy():
    from numba import njit

    from rnnlab_numba.mathfn import tanh

    apply = njit(lambda z: np.array([tanh(v) for v in z]))
    z = np.concatenate(
        [
            np.random.default_rng(0).normal(0, 4, 20000),
            np.linspace(-1e-3, 1e-3, 2001),
            [1e-300, 19.0, 25.0, 800.0, -800.0],
        ]
    )
    got, want = apply(z), np.tanh(z)
    ulps = np.abs(got - want) / np.spacing(np.abs(want) + 1e-300)
    assert ulps.max() <= 4
    special = apply(np.array([np.nan, np.inf, -np.inf, -0.0]))
    assert np.isnan(special[0]) and special[1] == 1.0 and special[2] == -1.0
    assert special[3] == 0.0 and np.signbit(special[3])


def _sine(registry, sets):
    from rnnlab.experiment.config import apply_overrides, build_experiment, read_toml

    raw = read_toml(SINE)
    origins = apply_overrides(raw, sets)
    return build_experiment(raw, registry, source=SINE, origins=origins)


PLANS = [
    *FUSED_PLANS,
    (dict(), dict(optimizer="sgd", grad_clip="norm", grad_clip_value=100.0), "xent", "last"),
]


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("model,train,loss,target", PLANS)
def test_epoch_runner_matches_reference_epoch(backend, model, train, loss, target, dtype, rtol):
    # batch 4 over 11 sequences: the last batch is smaller
    plan = epoch_plan(model, train, loss, target, dtype)
    cfg = plan.model
    rng = np.random.default_rng(3)
    T, N, n_in, n_out = 5, 11, 2, 3
    x = rng.normal(size=(T, N, n_in)).astype(dtype)
    lead = (N,) if target == "last" else (T, N)
    y = (
        rng.normal(size=(*lead, n_out)).astype(dtype)
        if loss == "mse"
        else rng.integers(0, n_out, size=lead)
    )
    params, opt, ref_params, ref_opt = twin_params(plan, n_in, n_out, rng)
    runner = backend.epoch_runner(plan)
    assert runner is not None
    ref_model = Model(cfg, reference_backend(), ref_params)
    for epoch in range(2):
        order = np.random.default_rng(epoch).permutation(N)
        got = runner(params, opt, x, y, order, 0.05)
        want = reference_epoch(ref_model, ref_opt, plan, Split(x, y), order, 0.05)
        np.testing.assert_allclose(got, want, rtol=rtol)
    assert opt.steps == ref_opt.steps == 6
    assert_same_state(params, opt, ref_params, ref_opt, rtol)


def test_epoch_runner_declines_what_it_does_not_fuse(backend):
    plan = EpochPlan(ModelConfig(cell="lstm"), TrainConfig(), "mse", "last")
    assert backend.epoch_runner(dataclasses.replace(plan, loss="hinge")) is None


def test_epoch_runner_declines_a_plan_field_added_later(backend):
    @dataclasses.dataclass(frozen=True)
    class PlanWithSmoothing(EpochPlan):
        label_smoothing: float = 0.0

    plan = PlanWithSmoothing(ModelConfig(), TrainConfig(), "mse", "last", label_smoothing=0.1)
    assert plan.uncovered(backend.epoch_features) == {"label_smoothing"}
    assert backend.epoch_runner(plan) is None
    assert epoch_runner(backend, plan) is None
    assert not EpochPlan(ModelConfig(), TrainConfig(), "mse", "last").uncovered(
        backend.epoch_features
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sine_training_agrees_with_reference(dtype):
    diffs = check_training_agreement("numba", SINE, sets=("train.epochs=3", f"model.dtype={dtype}"))
    assert set(diffs) == {"losses", "metrics", "params"}
