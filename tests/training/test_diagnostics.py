"""Gradient flow and recurrent health (rnnlab.training.diagnostics): the per-step hidden gradients
against
finite differences, the gates against the backend's forward pass, the sample, and the records."""

from dataclasses import replace

import numpy as np
import pytest

from rnnlab.cells import CellSpec
from rnnlab.experiment.schema import DiagnosticsConfig, ModelConfig
from rnnlab.nn.lengths import valid_steps
from rnnlab.nn.model import Model, layer_weights, loss_and_grad, target_mask
from rnnlab.specs import Dataset, Split
from rnnlab.testing import CASES, problem, reference_backend, sized_problem
from rnnlab.training.diagnostics import (
    Diagnostics,
    Sample,
    activations,
    flow_ratio,
    gradient_norm_by_step,
    health,
    hidden_gradients,
    validation_sample,
)

CONFIGS = [
    ModelConfig(cell=c, hidden_size=4, layers=n, nonlinearity=nl, dtype="float64")
    for c, nl in (("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh"))
    for n in (1, 2)
]


def loss_from_step(model: Model, x, y, loss, target, t: int, dh: np.ndarray) -> float:
    """The loss with the top layer's h_t replaced by h_t + dh: steps after t run on from the
    perturbed state (an lstm's c_t unchanged) and the head reads the perturbed h_t."""
    cfg, backend = model.cfg, model.backend
    state = model.zero_state(x.shape[1])
    h = x
    for layer in range(cfg.layers - 1):
        h, _, _ = backend.layer_forward(
            cfg.cell,
            layer_weights(model.params, layer),
            h,
            state[layer],
            nonlinearity=cfg.nonlinearity,
        )
    w = layer_weights(model.params, cfg.layers - 1)
    top = state[-1]
    head, final, _ = backend.layer_forward(
        cfg.cell, w, h[: t + 1], top, nonlinearity=cfg.nonlinearity
    )
    head = head.copy()
    head[t] += dh
    hs = head
    if t + 1 < x.shape[0]:
        start = (head[t],) + tuple(final[1:])
        tail, _, _ = backend.layer_forward(
            cfg.cell, w, h[t + 1 :], start, nonlinearity=cfg.nonlinearity
        )
        hs = np.concatenate([head, tail], axis=0)
    top_h = hs[-1] if target == "last" else hs
    out = top_h @ model.params["head.weight"].T + model.params["head.bias"]
    return loss_and_grad(out, y, loss)[0]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.cell}-{c.nonlinearity}-{c.layers}")
@pytest.mark.parametrize("loss,target", CASES)
def test_hidden_gradients_match_finite_differences(cfg, loss, target):
    params, x, y = problem(cfg, loss, target, T=6, N=3)
    model = Model(cfg, reference_backend(), params)
    dh = hidden_gradients(model, x, y, loss, target)
    assert dh.shape == (6, 3, cfg.hidden_size)
    eps = 1e-6
    numeric = np.zeros_like(dh)
    for t in range(x.shape[0]):
        for i in np.ndindex(dh.shape[1:]):
            e = np.zeros(dh.shape[1:])
            e[i] = eps
            plus = loss_from_step(model, x, y, loss, target, t, e)
            minus = loss_from_step(model, x, y, loss, target, t, -e)
            numeric[(t, *i)] = (plus - minus) / (2 * eps)
    # every step on its own: the early steps' gradients are the small ones
    for t in range(x.shape[0]):
        scale = max(np.abs(numeric[t]).max(), np.abs(dh[t]).max(), 1e-12)
        assert np.abs(dh[t] - numeric[t]).max() / scale < 1e-6, (t, dh[t], numeric[t])
    # the last step's gradient through the head alone is the model's own backward pass
    assert np.abs(numeric).max() > 0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_activations_reproduce_the_backends_hidden_states(cell):
    cfg = ModelConfig(cell=cell, hidden_size=5)
    params, x, _ = problem(cfg, "mse", "every", T=7, N=4)
    backend = reference_backend()
    w = layer_weights(params, 0)
    h0 = np.random.default_rng(1).normal(size=(4, 5))
    state0 = (h0, np.zeros_like(h0)) if cell == "lstm" else (h0,)
    hs, _, _ = backend.layer_forward(cell, w, x, state0)
    h_prev = np.concatenate([h0[None], hs[:-1]])
    g = activations(cell, w, x, h_prev)
    if cell == "rnn":
        again = g["h"]
    elif cell == "gru":
        again = (1 - g["z"]) * g["n"] + g["z"] * h_prev
    else:
        c, out = np.zeros_like(h0), []
        for t in range(7):
            c = g["f"][t] * c + g["i"][t] * g["g"][t]
            out.append(g["o"][t] * np.tanh(c))
        again = np.stack(out)
    np.testing.assert_allclose(again, hs, rtol=1e-12, atol=1e-14)


def adding_like(n=40, T=30, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    splits = {
        name: Split(rng.uniform(size=(T, n, 2)), rng.uniform(size=(n, 1)))
        for name in ("train", "val", "test")
    }
    return Dataset(splits, input_size=2, output_size=1, loss="mse", target="last")


def test_sample_is_seeded_and_bounded():
    data = adding_like(n=40)
    model = Model(
        ModelConfig(hidden_size=4),
        reference_backend(),
        problem(ModelConfig(hidden_size=4), "mse", "last", I=2, O=1)[0],
    )
    a, b = (validation_sample(model, data, 16, seed=5) for _ in range(2))
    assert len(a.split) == 16
    np.testing.assert_array_equal(a.split.x, b.split.x)
    other = validation_sample(model, data, 16, seed=6)
    assert not np.array_equal(a.split.x, other.split.x)
    assert len(validation_sample(model, data, 256, seed=5).split) == 40


def test_stateful_chunks_start_from_the_carried_state():
    rng = np.random.default_rng(0)
    L, k = 50, 5
    stream = {
        name: Split(rng.normal(size=(L, 1, 3)), rng.integers(0, 2, size=(L, 1)))
        for name in ("train", "val", "test")
    }
    data = Dataset(stream, input_size=3, output_size=2, loss="xent", target="every", chunk_length=k)
    cfg = ModelConfig(cell="lstm", hidden_size=4)
    model = Model(cfg, reference_backend(), problem(cfg, "xent", "every", I=3, O=2)[0])
    s = validation_sample(model, data, 4, seed=0)
    assert s.split.x.shape == (k, 4, 3) and s.target == "every"
    # the state each chosen chunk starts from: the stream run up to that chunk's start
    for j in range(4):
        start = next(
            c * k
            for c in range(L // k)
            if np.array_equal(stream["val"].x[c * k : c * k + k, 0], s.split.x[:, j])
        )
        want = model.zero_state(1)
        if start:
            _, want = model.outputs(stream["val"].x[:start], "every")
        for layer in range(cfg.layers):
            for a, b in zip(want[layer], s.state[layer], strict=True):
                np.testing.assert_allclose(a[0], b[j], rtol=1e-12)
    assert len(gradient_norm_by_step(model, s)) == k


def test_norms_ratio_and_health_records():
    data = adding_like()
    cfg = ModelConfig(cell="lstm", hidden_size=4, layers=2)
    model = Model(cfg, reference_backend(), problem(cfg, "mse", "last", I=2, O=1)[0])
    diag = Diagnostics(
        DiagnosticsConfig(every=2, health_every=1, sample_size=8), model, data, seed=0
    )
    assert diag.after_epoch(1).keys() == {"health"}
    rec = diag.after_epoch(2)
    norms = rec["gradient_norm_by_step"]
    assert len(norms) == 30 and all(v > 0 for v in norms)
    assert flow_ratio(norms) == norms[0] / norms[-1]
    h = rec["health"]
    assert set(h["spectral_radius"]) == {f"l{n}.{g}" for n in (0, 1) for g in "ifgo"}
    assert set(h["saturated"]) == {"l0", "l1"} and set(h["forget_gate"]) == {"l0", "l1"}
    assert all(0 <= v <= 1 for v in (*h["saturated"].values(), *h["forget_gate"].values()))
    W = model.params["rnn.weight_hh_l1"][4:8]
    assert h["spectral_radius"]["l1.f"] == pytest.approx(max(abs(np.linalg.eigvals(W))))
    end = diag.at_end()
    assert end["gradient_norm_by_step"] == norms and end["sample_size"] == 8
    off = Diagnostics(DiagnosticsConfig(health_every=0), model, data, seed=0)
    assert off.after_epoch(1) == {}


def test_a_saturated_rnn_is_seen_as_saturated():
    cfg = ModelConfig(cell="rnn", hidden_size=4)
    params = problem(cfg, "mse", "last", I=2, O=1)[0]
    params["rnn.weight_ih_l0"][...] = 100.0
    model = Model(cfg, reference_backend(), params)
    sample = validation_sample(model, adding_like(), 8, seed=0)
    assert health(model, sample)["saturated"]["l0"] > 0.9


def test_gradient_norms_in_float32_runs():
    cfg = ModelConfig(cell="gru", hidden_size=4, dtype="float32")
    params = problem(cfg, "mse", "last", I=2, O=1)[0]
    model = Model(cfg, reference_backend(), params)
    data = adding_like()
    data.splits = {
        k: Split(v.x.astype("float32"), v.y.astype("float32")) for k, v in data.splits.items()
    }
    norms = gradient_norm_by_step(model, validation_sample(model, data, 8, seed=0))
    model64 = Model(
        replace(cfg, dtype="float64"),
        reference_backend(),
        {k: v.astype("float64") for k, v in params.items()},
    )
    want = gradient_norm_by_step(model64, validation_sample(model64, adding_like(), 8, seed=0))
    np.testing.assert_allclose(norms, want, rtol=1e-4)


@pytest.mark.parametrize("cell,loss,target", [("lstm", "mse", "last"), ("gru", "xent", "every")])
def test_a_sample_taken_in_slices_gives_the_same_norms(monkeypatch, cell, loss, target):
    import rnnlab.training.diagnostics as diagnostics

    cfg = ModelConfig(cell=cell, hidden_size=4, layers=2)
    params, x, y = problem(cfg, loss, target, T=6, N=10)
    model = Model(cfg, reference_backend(), params)
    h0 = np.random.default_rng(2).normal(size=(10, 4))
    state = [(h0, h0) if cell == "lstm" else (h0,)] * 2
    sample = diagnostics.Sample(Split(x, y), target, loss, state)
    whole = gradient_norm_by_step(model, sample)
    monkeypatch.setattr(diagnostics, "PROBE_BYTES", 6 * 3 * (4 * 4 + 4) * 8)  # 3 per slice
    np.testing.assert_allclose(gradient_norm_by_step(model, sample), whole, rtol=1e-12)
    dh = hidden_gradients(model, x, y, loss, target, state)  # the definition, in one pass
    want = np.sqrt(10) * np.linalg.norm(dh.reshape(6, -1), axis=1)
    np.testing.assert_allclose(whole, want, rtol=1e-12)


def test_a_cell_rnnlab_does_not_know_gets_spectral_radii_only():
    cfg = ModelConfig(cell="rnn", hidden_size=4)
    params = problem(cfg, "mse", "last", I=2, O=1)[0]
    params["rnn.weight_hh_l0"] = np.random.default_rng(0).normal(size=(8, 4))  # 2 gate blocks
    model = Model(
        replace(cfg, cell="two_gate"), reference_backend(), params, cell=CellSpec("two_gate", 2)
    )
    end = Diagnostics(DiagnosticsConfig(every=1), model, adding_like(), seed=0).at_end()
    assert set(end["health"]["spectral_radius"]) == {"l0.g0", "l0.g1"}
    assert "gradient_norm_by_step" not in end and "two_gate" in end["note"]


LENGTH_CONFIGS = [
    ModelConfig(cell=c, hidden_size=3, layers=n, dtype="float64")
    for c in ("rnn", "lstm", "gru")
    for n in (1, 2)
]


def loss_from_step_with_lengths(model: Model, x, y, loss, target, lengths, t, dh) -> float:
    """:func:`loss_from_step` for packed sequences: h_t of the top layer of every sequence
    still running at t is replaced by h_t + dh[n]; the sequences that go on run on from it,
    each to its own end, and target "last" reads each sequence's state at its own last step."""
    cfg, backend = model.cfg, model.backend
    T, N = x.shape[:2]
    state = model.zero_state(N)
    h = x
    for layer in range(cfg.layers - 1):
        h, _, _ = backend.layer_forward(
            cfg.cell, layer_weights(model.params, layer), h, state[layer], lengths=lengths
        )
    w = layer_weights(model.params, cfg.layers - 1)
    head, final, _ = backend.layer_forward(
        cfg.cell, w, h[: t + 1], state[-1], lengths=np.minimum(lengths, t + 1)
    )
    hs = np.zeros((T, N, cfg.hidden_size))
    hs[: t + 1] = head
    running = t < lengths
    hs[t, running] += dh[running]
    on = np.flatnonzero(lengths > t + 1)  # the sequences that go on after step t
    if on.size:
        start = (hs[t, on],) + tuple(a[on] for a in final[1:])
        tail, _, _ = backend.layer_forward(
            cfg.cell, w, h[t + 1 :, on], start, lengths=lengths[on] - t - 1
        )
        hs[t + 1 :, on] = tail
    top_h = hs[lengths - 1, np.arange(N)] if target == "last" else hs
    out = top_h @ model.params["head.weight"].T + model.params["head.bias"]
    return loss_and_grad(out, y, loss, target_mask(target, lengths, T))[0]


@pytest.mark.parametrize("cfg", LENGTH_CONFIGS, ids=lambda c: f"{c.cell}-{c.layers}")
@pytest.mark.parametrize("loss,target", [("mse", "last"), ("xent", "every")])
def test_hidden_gradients_with_lengths_match_finite_differences(cfg, loss, target):
    params, x, y, _ = sized_problem(cfg, loss, target, T=6, N=4, seed=3)
    lengths = np.array([6, 1, 4, 3], dtype=np.int64)  # full, one step and two between
    x[~valid_steps(lengths, 6)] = 7.0  # padding is never read
    model = Model(cfg, reference_backend(), params)
    dh = hidden_gradients(model, x, y, loss, target, lengths=lengths)
    valid = valid_steps(lengths, 6)
    assert np.all(dh[~valid] == 0)  # no h_t after a sequence's end
    eps = 1e-6
    numeric = np.zeros_like(dh)
    for t in range(6):
        for i in np.ndindex(dh.shape[1:]):
            if not valid[t, i[0]]:
                continue
            e = np.zeros(dh.shape[1:])
            e[i] = eps
            plus = loss_from_step_with_lengths(model, x, y, loss, target, lengths, t, e)
            minus = loss_from_step_with_lengths(model, x, y, loss, target, lengths, t, -e)
            numeric[(t, *i)] = (plus - minus) / (2 * eps)
    for t in range(6):
        scale = max(np.abs(numeric[t]).max(), np.abs(dh[t]).max(), 1e-12)
        assert np.abs(dh[t] - numeric[t]).max() / scale < 1e-6, (t, dh[t], numeric[t])
    assert np.abs(numeric).max() > 0
    # the head's gradient enters each target-"last" sequence at its own last step
    if target == "last":
        assert np.all(np.abs(dh[lengths - 1, np.arange(4)]).max(axis=-1) > 0)


@pytest.mark.parametrize("cell,loss,target", [("lstm", "mse", "last"), ("gru", "xent", "every")])
def test_norms_with_lengths_cover_running_sequences_and_stop_at_the_longest(
    monkeypatch, cell, loss, target
):
    import rnnlab.training.diagnostics as diagnostics

    cfg = ModelConfig(cell=cell, hidden_size=4, layers=2)
    params, x, y, _ = sized_problem(cfg, loss, target, T=8, N=10)
    lengths = np.array([5, 1, 3, 6, 2, 6, 4, 1, 5, 3], dtype=np.int64)  # no sequence runs 7, 8
    model = Model(cfg, reference_backend(), params)
    sample = diagnostics.Sample(Split(x, y, lengths), target, loss)
    whole = gradient_norm_by_step(model, sample)
    assert len(whole) == 6 and all(v > 0 for v in whole)  # the steps that exist
    monkeypatch.setattr(diagnostics, "PROBE_BYTES", 6 * 3 * (4 * 4 + 4) * 8)  # 3 per slice
    np.testing.assert_allclose(gradient_norm_by_step(model, sample), whole, rtol=1e-12)
    dh = hidden_gradients(model, x, y, loss, target, lengths=lengths)  # one pass, untrimmed
    running = valid_steps(lengths, 8).sum(axis=1)[:6]
    want = 10 / np.sqrt(running) * np.linalg.norm(dh[:6].reshape(6, -1), axis=1)
    np.testing.assert_allclose(whole, want, rtol=1e-12)
    assert np.all(dh[6:] == 0)
    # all full length: the numbers of data without lengths
    full = diagnostics.Sample(Split(x, y, np.full(10, 8, dtype=np.int64)), target, loss)
    np.testing.assert_allclose(
        gradient_norm_by_step(model, full),
        gradient_norm_by_step(model, diagnostics.Sample(Split(x, y), target, loss)),
        rtol=1e-12,
    )


def test_variable_length_data_get_the_gradient_flow_and_health():
    data = adding_like()
    val = data.splits["val"]
    lengths = np.random.default_rng(0).integers(1, 25, size=40).astype(np.int64)
    x = np.where(valid_steps(lengths, 30)[..., None], val.x, 0.0)
    data.splits["val"] = Split(x, val.y, lengths=lengths)
    cfg = ModelConfig(cell="lstm", hidden_size=4)
    model = Model(cfg, reference_backend(), problem(cfg, "mse", "last", I=2, O=1)[0])
    diag = Diagnostics(DiagnosticsConfig(every=1, health_every=1), model, data, seed=0)
    rec = diag.after_epoch(1)
    sample = diag.sample()
    assert np.array_equal(sample.split.lengths, lengths)  # all 40: sample_size is 256
    norms = rec["gradient_norm_by_step"]
    assert len(norms) == int(lengths.max()) < 30 and all(v > 0 for v in norms)
    h = rec["health"]
    assert 0 <= h["saturated"]["l0"] <= 1 and 0 < h["forget_gate"]["l0"] < 1
    # the padding is not counted: saturating values there change nothing
    loud = np.where(valid_steps(lengths, 30)[..., None], val.x, 100.0)
    noisy = Sample(Split(loud, sample.split.y, lengths), "last", "mse")
    assert health(model, noisy) == h
    assert gradient_norm_by_step(model, noisy) == norms
    end = diag.at_end()
    assert "note" not in end and end["gradient_norm_by_step"] == norms
