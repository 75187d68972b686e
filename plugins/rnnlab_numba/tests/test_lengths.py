"""Variable-length sequences on the numba backend: its layer kernels and its fused epoch.

The definition of packed semantics used throughout: running a padded batch with ``lengths``
gives, for every sequence, what running that sequence alone and unpadded gives. The sequences
alone run through the NumPy reference backend (no lengths needed there), so every check here is
against the reference; gradients are also checked against finite differences.
"""

import numpy as np
import pytest

from rnnlab.cli.common import load_experiment
from rnnlab.experiment.config import ModelConfig
from rnnlab.nn.model import GATES, Model, Shape, init_params, layer_weights, log_softmax, param_name
from rnnlab.nn.optim import Optimizer, clip_gradients
from rnnlab.registry.manager import Registry
from rnnlab.specs import Split
from rnnlab.testing import check_training_agreement, reference_backend, relative_error
from rnnlab.training.loop import epoch_runner, reference_epoch
from rnnlab.training.session import prepare
from tests.support.epoch_checks import FUSED_PLANS, assert_same_state, epoch_plan, twin_params
from tests.support.paths import SUPPORT

pytest.importorskip("numba")

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
GARBAGE = 1e6  # what the padding holds: it must never reach a result


@pytest.fixture(scope="module")
def backend():
    return Registry().backend("numba").load()


@pytest.fixture(scope="module")
def ref():
    return reference_backend()


def valid_mask(lengths, T):
    """``[T, N]``: True where step t is inside sequence n."""
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


def pad(a, lengths, value):
    """``a [T, N, ...]`` with every entry past a sequence's end set to ``value``."""
    keep = valid_mask(lengths, a.shape[0]).reshape(a.shape[:2] + (1,) * (a.ndim - 2))
    return np.where(keep, a, np.asarray(value, a.dtype))


def test_backend_declares_lengths(backend):
    assert "lengths" in backend.features


# -- one layer: the padded batch equals its sequences run alone ------------------------------
def layer_case(cell, dtype, lengths, *, T, I=3, H=5, seed=0):
    rng = np.random.default_rng(seed)
    G, N = GATES[cell], len(lengths)
    shapes = {
        "weight_ih": (G * H, I),
        "weight_hh": (G * H, H),
        "bias_ih": (G * H,),
        "bias_hh": (G * H,),
    }
    w = {k: rng.uniform(-0.5, 0.5, s).astype(dtype) for k, s in shapes.items()}
    x = pad(rng.normal(size=(T, N, I)).astype(dtype), lengths, GARBAGE)
    state0 = tuple(rng.normal(size=(N, H)).astype(dtype) for _ in range(2 if cell == "lstm" else 1))
    dhs = pad(rng.normal(size=(T, N, H)).astype(dtype), lengths, GARBAGE)
    return w, x, state0, dhs


LENGTHS = [
    [7, 3, 1, 7, 5, 2],  # unsorted, ties, a length 1, two full
    [2, 4, 4, 3, 1, 4, 2, 3, 4],  # more rows than a four-row block; none is full length
    [1],
    [5, 5, 5, 5, 5],  # all full: the fixed-length arithmetic
]


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("lengths", LENGTHS)
def test_layer_with_lengths_equals_each_sequence_alone(
    backend, ref, cell, nonlinearity, dtype, rtol, lengths
):
    T = max(lengths) + (1 if lengths[0] == 2 else 0)  # one case padded past the longest too
    w, x, state0, dhs = layer_case(cell, dtype, lengths, T=T)
    lengths = np.array(lengths)
    hs, final, cache = backend.layer_forward(
        cell, w, x, state0, nonlinearity=nonlinearity, lengths=lengths
    )
    grads, dx = backend.layer_backward(cell, w, cache, dhs)
    pad_mask = ~valid_mask(lengths, T)
    assert hs.shape == (T, len(lengths), 5) and hs.dtype == x.dtype and dx.shape == x.shape
    assert not hs[pad_mask].any() and not dx[pad_mask].any()  # exactly 0 past each end
    want_grads = {k: np.zeros_like(v) for k, v in w.items()}
    for n, length in enumerate(lengths):
        alone = slice(0, length), slice(n, n + 1)
        s0 = tuple(s[n : n + 1] for s in state0)
        want_hs, want_final, want_cache = ref.layer_forward(
            cell, w, x[alone], s0, nonlinearity=nonlinearity
        )
        g, want_dx = ref.layer_backward(cell, w, want_cache, dhs[alone])
        for k in g:
            want_grads[k] += g[k]
        pairs = {
            "hs": (hs[alone], want_hs),
            "dx": (dx[alone], want_dx),
            **{f"final {i}": (final[i][n : n + 1], want_final[i]) for i in range(len(s0))},
        }
        for what, (a, b) in pairs.items():
            assert relative_error(a, b) <= rtol, f"sequence {n} {what}: {relative_error(a, b)}"
    assert set(grads) == set(want_grads)
    for k, g in grads.items():
        assert g.dtype == x.dtype
        assert relative_error(g, want_grads[k]) <= rtol, f"grad {k}"


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_layer_padding_is_inert(backend, cell, nonlinearity):
    lengths = np.array([4, 1, 6, 3, 6, 2])
    w, x, state0, dhs = layer_case(cell, "float64", lengths, T=6)
    runs = []
    for value in (0.0, -3e5, np.nan):
        hs, final, cache = backend.layer_forward(
            cell, w, pad(x, lengths, value), state0, nonlinearity=nonlinearity, lengths=lengths
        )
        grads, dx = backend.layer_backward(cell, w, cache, pad(dhs, lengths, value))
        runs.append([hs, *final, dx, *(grads[k] for k in sorted(grads))])
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert np.array_equal(a, b)


def test_full_lengths_are_the_fixed_length_numbers(backend):
    for cell, nonlinearity in CELLS:
        w, x, state0, dhs = layer_case(cell, "float64", [5] * 6, T=5)
        a_hs, a_final, a_cache = backend.layer_forward(
            cell, w, x, state0, nonlinearity=nonlinearity
        )
        b_hs, b_final, b_cache = backend.layer_forward(
            cell, w, x, state0, nonlinearity=nonlinearity, lengths=np.full(6, 5)
        )
        a_g, a_dx = backend.layer_backward(cell, w, a_cache, dhs)
        b_g, b_dx = backend.layer_backward(cell, w, b_cache, dhs)
        for a, b in [
            (a_hs, b_hs),
            (a_dx, b_dx),
            *zip(a_final, b_final, strict=True),
            *((a_g[k], b_g[k]) for k in a_g),
        ]:
            assert np.array_equal(a, b), cell


@pytest.mark.parametrize("bad", [[3, 0, 2], [3, 5, 2], [3, 2], [1.0, 2.0, 3.0], [-1, 2, 2]])
def test_layer_refuses_lengths_out_of_range(backend, bad):
    w, x, state0, _ = layer_case("rnn", "float64", [4, 4, 4], T=4)
    with pytest.raises(ValueError, match="lengths"):
        backend.layer_forward("rnn", w, x, state0, lengths=np.array(bad))


# -- a whole model with lengths: gradients against finite differences --------------------------
def masked_loss_and_grads(backend, cfg, params, x, y, lengths, loss, target):
    """The packed model: layers with lengths, the head on each sequence's final state ("last")
    or on its valid steps ("every", means over valid steps), and the exact gradients."""
    T, N = x.shape[:2]
    n_state = 2 if cfg.cell == "lstm" else 1
    h, caches = x, []
    for layer in range(cfg.layers):
        state0 = tuple(np.zeros((N, cfg.hidden_size), x.dtype) for _ in range(n_state))
        h, final, cache = backend.layer_forward(
            cfg.cell,
            layer_weights(params, layer),
            h,
            state0,
            nonlinearity=cfg.nonlinearity,
            lengths=lengths,
        )
        caches.append(cache)
    W, b = params["head.weight"], params["head.bias"]
    valid = valid_mask(lengths, T)
    top = final[0] if target == "last" else h
    out = top @ W.T + b
    keep = np.ones(N, bool) if target == "last" else valid
    count = keep.sum()
    if loss == "mse":
        diff = np.where(keep[..., None], out - y, 0.0)
        value = float(np.sum(diff * diff)) / (count * out.shape[-1])
        dout = 2.0 * diff / (count * out.shape[-1])
    else:
        logp = log_softmax(out)
        onehot = np.eye(out.shape[-1])[np.where(keep, y, 0)]
        value = -float(np.sum(np.where(keep, np.sum(logp * onehot, axis=-1), 0.0))) / count
        dout = np.where(keep[..., None], (np.exp(logp) - onehot) / count, 0.0)
    grads = {
        "head.weight": dout.reshape(-1, dout.shape[-1]).T @ top.reshape(-1, top.shape[-1]),
        "head.bias": dout.reshape(-1, dout.shape[-1]).sum(axis=0),
    }
    if target == "last":
        dh = np.zeros_like(h)
        dh[lengths - 1, np.arange(N)] = dout @ W
    else:
        dh = dout @ W
    dh = pad(dh, lengths, GARBAGE)  # what the kernels must ignore
    for layer in reversed(range(cfg.layers)):
        layer_grads, dh = backend.layer_backward(
            cfg.cell, layer_weights(params, layer), caches[layer], dh
        )
        for key, g in layer_grads.items():
            grads[param_name(key, layer)] = g
        dh = pad(dh, lengths, GARBAGE)
    return value, grads


@pytest.mark.parametrize("loss,target", [("mse", "last"), ("xent", "every"), ("mse", "every")])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_gradients_with_lengths_match_finite_differences(
    backend, cell, nonlinearity, layers, loss, target
):
    cfg = ModelConfig(cell=cell, nonlinearity=nonlinearity, hidden_size=4, layers=layers)
    rng = np.random.default_rng(7)
    T, N, n_in, n_out = 5, 4, 3, 2
    lengths = np.array([3, 5, 1, 4])
    params = init_params(cfg, Shape(n_in, n_out), rng)
    x = pad(rng.normal(size=(T, N, n_in)), lengths, GARBAGE)
    lead = (N,) if target == "last" else (T, N)
    y = rng.normal(size=(*lead, n_out)) if loss == "mse" else rng.integers(0, n_out, size=lead)
    _, grads = masked_loss_and_grads(backend, cfg, params, x, y, lengths, loss, target)
    eps = 1e-5
    for name, p in params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + eps
            plus = masked_loss_and_grads(backend, cfg, params, x, y, lengths, loss, target)[0]
            p[i] = keep - eps
            minus = masked_loss_and_grads(backend, cfg, params, x, y, lengths, loss, target)[0]
            p[i] = keep
            numeric[i] = (plus - minus) / (2 * eps)
        assert relative_error(grads[name], numeric) <= 1e-7, (
            name,
            relative_error(grads[name], numeric),
        )


# -- the fused epoch with lengths --------------------------------------------------------------
def reference_epoch_by_sequence(cfg, plan, params, optimizer, x, y, order, lr, lengths):
    """The core loop's epoch with packed batches, built from each sequence alone and unpadded
    on the NumPy reference: a batch's mean loss (over its targets: sequences for "last", valid
    steps for "every") is the count-weighted mean of its sequences' own mean losses."""
    model = Model(cfg, reference_backend(), params)
    B, losses = plan.train.batch_size, []
    for start in range(0, len(order), B):
        total, grads, count = 0.0, {k: np.zeros_like(p) for k, p in params.items()}, 0
        for n in order[start : start + B]:
            steps = lengths[n] if plan.target == "every" else 1
            xs = x[: lengths[n], n : n + 1]
            ys = y[n : n + 1] if plan.target == "last" else y[: lengths[n], n : n + 1]
            value, g, _ = model.loss_and_grads(xs, ys, plan.loss, plan.target)
            total += value * steps
            count += steps
            for k in grads:
                grads[k] += g[k] * steps
        for k in grads:
            grads[k] /= count
        clip_gradients(grads, plan.train.grad_clip, plan.train.grad_clip_value)
        optimizer.step(params, grads, lr)
        losses.append(total / count)
    return np.array(losses)


PLANS = [
    *FUSED_PLANS,
    (
        dict(layers=3),
        dict(optimizer="sgd", grad_clip="norm", grad_clip_value=100.0),
        "xent",
        "last",
    ),
]


def runner_case(dtype, loss, target, *, T=7, N=11, n_in=2, n_out=3, seed=3):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=N)
    lengths[2] = 1
    x = pad(rng.normal(size=(T, N, n_in)).astype(dtype), lengths, GARBAGE)
    lead = (N,) if target == "last" else (T, N)
    y = (
        rng.normal(size=(*lead, n_out)).astype(dtype)
        if loss == "mse"
        else rng.integers(0, n_out, size=lead)
    )
    if target == "every":  # targets past the ends are ignored too
        y = pad(y, lengths, GARBAGE if loss == "mse" else -1)
    return rng, lengths, x, y, n_in, n_out


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("model,train,loss,target", PLANS)
def test_epoch_runner_with_lengths_matches_sequences_alone(
    backend, model, train, loss, target, dtype, rtol
):
    # batch 4 over 11 sequences: the last batch is smaller
    plan = epoch_plan(model, train, loss, target, dtype)
    cfg = plan.model
    rng, lengths, x, y, n_in, n_out = runner_case(dtype, loss, target)
    params, opt, ref_params, ref_opt = twin_params(plan, n_in, n_out, rng)
    runner = backend.epoch_runner(plan)
    for epoch in range(2):
        order = np.random.default_rng(epoch).permutation(len(lengths))
        got = runner(params, opt, x, y, order, 0.05, lengths=lengths)
        want = reference_epoch_by_sequence(
            cfg, plan, ref_params, ref_opt, x, y, order, 0.05, lengths
        )
        np.testing.assert_allclose(got, want, rtol=rtol)
    assert opt.steps == ref_opt.steps == 6
    assert_same_state(params, opt, ref_params, ref_opt, rtol)


@pytest.mark.parametrize("model,train,loss,target", PLANS[1:3])
def test_epoch_runner_padding_is_inert_and_full_lengths_change_nothing(
    backend, model, train, loss, target
):
    plan = epoch_plan(model, train, loss, target)
    cfg = plan.model
    rng, lengths, x, y, n_in, n_out = runner_case("float64", loss, target)
    params = init_params(cfg, Shape(n_in, n_out), rng)
    runner = backend.epoch_runner(plan)
    order = np.random.default_rng(5).permutation(len(lengths))

    def run(x, y, lengths):
        p = {k: v.copy() for k, v in params.items()}
        losses = runner(p, Optimizer(plan.train, p), x, y, order, 0.05, lengths=lengths)
        return [losses, *p.values()]

    garbage = [
        run(pad(x, lengths, value), y if target == "last" else pad(y, lengths, fill), lengths)
        for value, fill in ((0.0, 0), (-7e5, 1), (np.nan, 2))
    ]
    for other in garbage[1:]:
        for a, b in zip(garbage[0], other, strict=True):
            assert np.array_equal(a, b)
    full = np.full(len(lengths), x.shape[0])
    for a, b in zip(run(x, y, None), run(x, y, full), strict=True):
        assert np.array_equal(a, b)  # every row full length: the fixed-length numbers


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("model,train,loss,target", PLANS)
def test_epoch_runner_with_lengths_matches_the_core_loop(
    backend, model, train, loss, target, dtype, rtol
):
    """The fused epoch against the core's reference loop, which trims each batch to its longest
    sequence and runs the NumPy reference with lengths."""
    plan = epoch_plan(model, train, loss, target, dtype, lengths=True)
    cfg = plan.model
    rng, lengths, x, y, n_in, n_out = runner_case(dtype, loss, target)
    params, opt, ref_params, ref_opt = twin_params(plan, n_in, n_out, rng)
    runner = epoch_runner(backend, plan)
    assert runner is not None  # "lengths" is a feature the fused epoch declares
    ref_model = Model(cfg, reference_backend(), ref_params)
    split = Split(pad(x, lengths, 0.0), y if target == "last" else pad(y, lengths, 0), lengths)
    for epoch in range(2):
        order = np.random.default_rng(epoch).permutation(len(lengths))
        got = runner(params, opt, x, y, order, 0.05, lengths=lengths)
        want = reference_epoch(ref_model, ref_opt, plan, split, order, 0.05)
        np.testing.assert_allclose(got, want, rtol=rtol)
    for name, p in ref_params.items():
        np.testing.assert_allclose(
            params[name], p, rtol=rtol, atol=rtol * np.abs(p).max(), err_msg=name
        )


# -- whole runs with lengths: numba against numpy ----------------------------------------------
VARLEN_PLUGIN = str(SUPPORT / "varlen_task.py")
VARLEN_EXPERIMENT = """\
[experiment]
name = "varlen"
seed = 3

[task]
name = "varlen"
target = "{target}"
skew = true
pad = 1e6

[model]
cell = "{cell}"
hidden_size = 8
layers = 2
dtype = "{dtype}"

[train]
epochs = 3
batch_size = 16
learning_rate = 0.02
bucket_by_length = {bucket}
"""


@pytest.mark.parametrize(
    "cell,target,bucket",
    [
        ("rnn", "last", "true"),
        ("rnn", "every", "false"),
        ("lstm", "every", "true"),
        ("gru", "last", "false"),
    ],
)
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", None)])
def test_a_run_with_lengths_agrees_with_the_reference(tmp_path, cell, target, bucket, dtype, rtol):
    """Every per-epoch loss, final metric and parameter; every cell trains through the fused
    epoch."""
    path = tmp_path / "varlen.toml"
    path.write_text(VARLEN_EXPERIMENT.format(cell=cell, target=target, bucket=bucket, dtype=dtype))
    exp, registry = load_experiment(str(path), ["train.backend=numba"], [VARLEN_PLUGIN])
    session = prepare(exp, registry)
    assert session.plan.lengths
    fused = epoch_runner(session.backend, session.plan)
    assert fused is not None
    diffs = check_training_agreement("numba", exp, registry=registry, rtol=rtol)
    assert set(diffs) == {"losses", "metrics", "params"}
