"""The benchmark's JAX and PyTorch contenders compute what rnnlab's NumPy reference computes:
the same loss and gradients from the same parameters, the same parameters after optimizer steps
(Adam after global-norm clipping, Adagrad after clipping by value), and the same epochs (JAX's
minibatch step and whole epoch under jit, windowed and stateful). float64: loss and gradients to
1e-10, parameters after steps to 1e-9."""

import sys

import numpy as np
import pytest

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import backends  # noqa: E402
from backends import Case  # noqa: E402

from rnnlab.cells import cell_spec  # noqa: E402
from rnnlab.experiment.schema import ModelConfig, TrainConfig
from rnnlab.nn.model import Model, Shape, init_params  # noqa: E402
from rnnlab.nn.optim import Optimizer, clip_gradients  # noqa: E402
from rnnlab.registry.manager import Registry  # noqa: E402
from rnnlab.specs import Split  # noqa: E402
from rnnlab.training.loop import reference_epoch  # noqa: E402
from rnnlab.training.session import runs_cell  # noqa: E402
from rnnlab.training.stateful import stateful_epoch  # noqa: E402

CELLS = ("rnn", "lstm", "gru", "mingru", "minlstm", "indrnn", "lru")
CASES = [Case(6, 4, 3, cell) for cell in CELLS] + [
    Case(6, 4, 3, cell, bidirectional=True) for cell in ("lstm", "mingru", "lru")
]
GRAD_TOL = {"rtol": 1e-10, "atol": 1e-13}  # one forward and backward pass
# after optimizer steps and epochs: Adam divides by sqrt(v), which magnifies the last bits of
# near-zero gradients (measured up to 4e-10 relative on elements of 1e-12)
TOL = {"rtol": 1e-9, "atol": 1e-12}


def ids(case: Case) -> str:
    return case.cell + ("-bi" if case.bidirectional else "")


def tiny_data(S: int = 7, T: int = 6) -> Split:
    """``S`` sequences of two inputs; targets far from what the model starts at, so the
    gradient's norm is above the clipping threshold (1) and clipping acts."""
    rng = np.random.default_rng(5)
    return Split(rng.standard_normal((T, S, 2)), 10.0 + rng.standard_normal((S, 1)))


def numpy_model(case: Case, params):
    plan = backends.plan_for(case)
    model = Model(plan.model, Registry().backend("numpy").load(), params)
    return plan, model


def reference_steps(case, data, batches):
    """rnnlab's loss and gradients on the first batch, and the parameters after a step on each
    batch (clip, then Adam), with the global norm of each step's gradients."""
    params = backends.initial_params(case, data.x.shape[-1])
    plan, model = numpy_model(case, params)
    opt = Optimizer(plan.train, params)
    first, norms = None, []
    for idx in batches:
        loss, grads, _ = model.loss_and_grads(data.x[:, idx], data.y[idx], "mse", "last")
        first = first or (loss, {k: g.copy() for k, g in grads.items()})
        norms.append(clip_gradients(grads, plan.train.grad_clip, plan.train.grad_clip_value))
        opt.step(params, grads, plan.train.learning_rate)
    return first, params, norms


BATCHES = (np.array([0, 2, 5]), np.array([1, 6, 3]))


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_jax_loss_grads_and_steps_equal_the_reference(case):
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import jaxmodel

    data = tiny_data()
    (loss, grads), after, norms = reference_steps(case, data, BATCHES)
    assert min(norms) > 1.0  # clipping acted on every step
    problem = backends.jax_problem(case, data)
    spec, train = jaxmodel.Spec(**problem["spec"]), jaxmodel.Training(**problem["train"])
    params = {k: jnp.asarray(v) for k, v in problem["params"].items()}
    idx = BATCHES[0]
    (value, _), g = jaxmodel.loss_and_grads(spec, params, data.x[:, idx], data.y[idx])
    assert float(value) == pytest.approx(loss, rel=1e-12)
    assert set(g) == set(grads)
    for name in grads:
        np.testing.assert_allclose(np.asarray(g[name]), grads[name], **GRAD_TOL, err_msg=name)
    opt, step = jaxmodel.make_step(spec, train)
    state = opt.init(params)
    for idx in BATCHES:
        params, state, _, _ = step(params, state, data.x[:, idx], data.y[idx])
    for name in after:
        np.testing.assert_allclose(np.asarray(params[name]), after[name], **TOL, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_torch_loss_grads_and_steps_equal_the_reference(case):
    torch = pytest.importorskip("torch")
    data = tiny_data()
    (loss, grads), after, _ = reference_steps(case, data, BATCHES)
    c = backends.TorchContender(case, data, threads=1)
    tensors = c.named_tensors()
    assert set(tensors) == set(grads)
    value = c.loss(torch.from_numpy(BATCHES[0]))
    value.backward()
    assert value.item() == pytest.approx(loss, rel=1e-12)
    for name, p in tensors.items():
        np.testing.assert_allclose(p.grad.numpy(), grads[name], **GRAD_TOL, err_msg=name)
    for idx in BATCHES:
        c.train_batch(torch.from_numpy(idx))
    for name, p in c.named_tensors().items():
        np.testing.assert_allclose(p.detach().numpy(), after[name], **TOL, err_msg=name)


@pytest.mark.parametrize("variant", ["step", "epoch"])
@pytest.mark.parametrize("cell", ["rnn", "lru"])
def test_jax_epochs_equal_the_reference_epoch(cell, variant):
    """A whole epoch (two full minibatches and a shorter last one, in a shuffled order)."""
    pytest.importorskip("optax")
    import jaxmodel

    case, data = Case(6, 4, 3, cell), tiny_data()
    order = np.array([3, 0, 6, 2, 5, 1, 4])
    params = backends.initial_params(case, 2)
    plan, model = numpy_model(case, params)
    losses = reference_epoch(model, Optimizer(plan.train, params), plan, data, order, 1e-3)
    problem = dict(backends.jax_problem(case, data), variant=variant)
    problem["spec"] = jaxmodel.Spec(**problem["spec"])
    problem["train"] = jaxmodel.Training(**problem["train"])
    trainer = jaxmodel.Trainer(**problem)
    assert trainer.compile_seconds > 0
    np.testing.assert_allclose(trainer.epoch(order), losses, rtol=1e-9)
    for name, value in trainer.numpy_params().items():
        np.testing.assert_allclose(value, params[name], **TOL, err_msg=name)


@pytest.mark.parametrize("variant", ["step", "epoch"])
def test_jax_stateful_epoch_equals_the_reference(variant):
    """The char model's scheme: one stream in chunks (the last shorter), the state carried,
    cross-entropy at every step, Adagrad after clipping by value."""
    pytest.importorskip("optax")
    import jaxmodel

    V, H, L, chunk = 5, 4, 11, 4
    rng = np.random.default_rng(7)
    chars = rng.integers(0, V, L + 1)
    cfg = ModelConfig(cell="rnn", hidden_size=H)
    train = TrainConfig(
        batch_size=1,
        optimizer="adagrad",
        learning_rate=0.1,
        grad_clip="value",
        grad_clip_value=0.01,
    )
    params = init_params(cfg, Shape(V, V), np.random.default_rng(0))
    start = {k: v.copy() for k, v in params.items()}
    model = Model(cfg, Registry().backend("numpy").load(), params)
    split = Split(np.eye(V)[chars[:-1]][:, None, :], chars[1:][:, None])
    plan = backends.EpochPlan(cfg, train, "xent", "every")
    losses = stateful_epoch(model, Optimizer(train, params), plan, split, chunk, 0.1)
    trainer = jaxmodel.Trainer(
        jaxmodel.Spec("rnn", H, "tanh", loss="xent", target="every"),
        jaxmodel.Training("adagrad", 0.1, "value", 0.01, eps=train.eps),
        start,
        chars[:-1],
        chars[1:],
        chunk,
        variant,
        stateful=True,
        vocab=V,
    )
    np.testing.assert_allclose(trainer.epoch(), losses, rtol=1e-9)
    for name, value in trainer.numpy_params().items():
        np.testing.assert_allclose(value, params[name], **TOL, err_msg=name)


def test_a_backend_that_does_not_run_the_cell_is_named_not_fatal():
    numba = Registry().backend("numba").load()
    cell = next((c for c in CELLS if not runs_cell(numba, cell_spec(c))), None)
    if cell is None:
        pytest.skip("numba runs every cell")
    unavailable = {}
    out = backends.contenders(Case(3, 4, 32, cell), ["numpy", "numba"], False, None, unavailable)
    assert [c.name for c in out] == ["numpy"]
    assert unavailable == {"numba": f"numba does not run {cell}"}
    with pytest.raises(backends.CannotRun, match=f"numba does not run {cell}"):
        backends.contenders(Case(3, 4, 32, cell), ["numba"], False)


def test_case_flags():
    case = backends.parse_case("1000,64,32,lru,adding")
    assert case == Case(1000, 64, 32, "lru", data="adding")
    assert case.label == "lru T=1000 H=64 B=32 adding"
    assert backends.parse_case("10,32,32,lstm,bi").bidirectional
    assert backends.parse_case("10,32,32") == Case(10, 32, 32)
    with pytest.raises(ValueError, match="unknown case flag"):
        backends.parse_case("10,32,32,lstm,backwards")
    data = backends.case_data(case)
    assert data.x.shape == (1000, backends.WINDOWS, 2) and data.y.shape == (backends.WINDOWS, 1)
    np.testing.assert_array_equal(data.x[:, :, 1].sum(axis=0), 2)  # two marked steps each
