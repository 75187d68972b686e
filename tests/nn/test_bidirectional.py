"""Bidirectional layers and dropout between layers (issue 13), composed by the core from the
backend's forward kernels: PyTorch's names and layout, the reverse direction as the forward
kernel on each sequence reversed within its own length, exact gradients with fixed dropout
masks, dropout only while training, from the run's seeded generator, and resumable."""

from __future__ import annotations

import signal

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.experiment.config import ModelConfig, TrainConfig
from rnnlab.nn.model import Model, Shape, init_params, param_name, reversal, reverse_steps
from rnnlab.testing import fixed_masks, gradient_errors, reference_backend
from rnnlab.training.loop import epoch_runner
from rnnlab.training.run import run_experiment
from rnnlab.training.session import STREAMS, EpochPlan, generators, prepare
from rnnlab_numpy.backend import NumpyBackend
from tests.nn.test_lengths import PLUGIN, experiment
from tests.support.tiny_runs import BATCHES_PER_EPOCH, assert_same_outcome, outcome, tiny_experiment
from tests.training.test_resume import reference, resumed, send, started

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
BIDIRECTIONAL = ("model.layers=2", "model.bidirectional=true")
DROPOUT = ("model.layers=2", "model.dropout=0.4")


def bi_model(cell, nonlinearity="tanh", layers=2, *, I=3, O=2, seed=0, **extra):
    cfg = ModelConfig(
        cell=cell,
        hidden_size=5,
        layers=layers,
        nonlinearity=nonlinearity,
        bidirectional=True,
        **extra,
    )
    return Model(cfg, NumpyBackend(), init_params(cfg, Shape(I, O), np.random.default_rng(seed)))


def test_parameters_have_pytorchs_names_and_shapes():
    model = bi_model("lstm", I=3, O=2)
    G, H = 4, 5
    assert param_name("weight_hh", 1, reverse=True) == "rnn.weight_hh_l1_reverse"
    assert list(model.params) == [
        f"rnn.{key}_l{k}{suffix}"
        for k in (0, 1)
        for suffix in ("", "_reverse")
        for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ] + ["head.weight", "head.bias"]
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes["rnn.weight_ih_l0_reverse"] == (G * H, 3)
    assert shapes["rnn.weight_ih_l1"] == shapes["rnn.weight_ih_l1_reverse"] == (G * H, 2 * H)
    assert shapes["head.weight"] == (2, 2 * H)


def test_a_unidirectional_model_draws_what_it_drew_before():
    cfg = ModelConfig(cell="gru", hidden_size=5, layers=2)
    params = init_params(cfg, Shape(3, 2), np.random.default_rng(4))
    rng = np.random.default_rng(4)  # the pre-bidirectional order: layer by layer, then the head
    bound = 1 / np.sqrt(5)
    for k in (0, 1):
        for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            want = rng.uniform(-bound, bound, params[param_name(key, k)].shape)
            assert np.array_equal(params[param_name(key, k)], want)


def test_the_reversal_reverses_each_sequence_within_its_length_and_is_its_own_inverse():
    lengths = np.array([3, 5, 1])
    rev = reversal(lengths, 5)
    assert rev[:, 0].tolist() == [2, 1, 0, 3, 4] and rev[:, 2].tolist() == [0, 1, 2, 3, 4]
    a = np.random.default_rng(0).normal(size=(5, 3, 2))
    assert np.array_equal(reverse_steps(reverse_steps(a, rev), rev), a)
    assert np.array_equal(reverse_steps(a, None), a[::-1])


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_each_direction_is_the_forward_kernel_on_its_sequence_alone(cell, nonlinearity):
    """Layer 0 of a bidirectional stack on a padded batch: the forward half is the sequence
    run alone, the reverse half is the reverse weights run alone on the sequence read
    backwards, reversed back; h_n is [layers * 2] in PyTorch's order."""
    model = bi_model(cell, nonlinearity, layers=1)
    lengths = np.array([4, 7, 1, 5])
    x = np.random.default_rng(1).normal(size=(7, 4, 3))
    hs, final, _ = model._layers_forward(x, None, lengths)
    H, backend = 5, model.backend
    for n, L in enumerate(lengths):
        alone = x[:L, n : n + 1]
        for reverse, half in ((False, slice(0, H)), (True, slice(H, 2 * H))):
            w = {
                key: model.params[param_name(key, 0, reverse)]
                for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            seq = alone[::-1] if reverse else alone
            want, last, _ = backend.layer_forward(
                cell,
                w,
                np.ascontiguousarray(seq),
                model.cell.zero_state(1, H, x.dtype),
                nonlinearity=nonlinearity,
            )
            want = want[::-1] if reverse else want
            np.testing.assert_allclose(hs[:L, n, half], want[:, 0], rtol=0, atol=1e-14)
            assert np.all(hs[L:, n] == 0)
            np.testing.assert_allclose(final[int(reverse)][0][n], last[0][0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("loss,target", [("mse", "last"), ("xent", "every")])
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_gradients_with_lengths_and_fixed_dropout_masks_match_finite_differences(
    cell, nonlinearity, loss, target
):
    cfg = ModelConfig(
        cell=cell,
        hidden_size=3,
        layers=3,
        nonlinearity=nonlinearity,
        bidirectional=True,
        dropout=0.5,
    )
    errors = gradient_errors(reference_backend(), cfg, loss, target, lengths=True)
    assert max(errors.values()) < 1e-7, errors


def test_dropout_masks_are_inverted_and_only_between_layers():
    model = bi_model("gru", layers=3, dropout=0.25)
    masks = model.dropout_masks(np.random.default_rng(0), 6, 40)
    assert len(masks) == 2 and masks[0].shape == (6, 40, 10)
    assert set(np.unique(masks[0])) == {0.0, 1 / 0.75}
    assert 0.2 < np.mean(masks[0] == 0) < 0.3
    x = np.random.default_rng(1).normal(size=(6, 40, 3))
    plain = model._layers_forward(x, None)[0]
    dropped = model._layers_forward(x, None, masks=masks)[0]
    assert not np.array_equal(plain, dropped)
    # the top layer's outputs are not dropped: no zeros appear beyond the recurrence's own
    assert np.all(dropped != 0)


def test_no_dropout_and_one_layer_draw_nothing():
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    assert bi_model("rnn", layers=2).dropout_masks(rng, 3, 2) is None
    assert bi_model("rnn", layers=1, dropout=0.5).dropout_masks(rng, 3, 2) is None
    assert rng.bit_generator.state == before


def test_the_dropout_stream_leaves_every_other_stream_as_it_was():
    """Adding the stream changes no draw of the existing ones (SeedSequence.spawn)."""
    assert STREAMS[-1] == "dropout"
    old = np.random.SeedSequence(5).spawn(4)
    rngs = generators(5)
    for name, seq in zip(STREAMS[:4], old, strict=True):
        assert rngs[name].random() == np.random.default_rng(seq).random()


def test_plans_carry_bidirectional_and_dropout_and_numba_must_declare_them():
    plan = EpochPlan(
        ModelConfig(layers=2, bidirectional=True, dropout=0.2), TrainConfig(), "mse", "last"
    )
    assert {"bidirectional", "dropout"} <= plan.features()
    assert (
        not {"bidirectional", "dropout"}
        & EpochPlan(ModelConfig(), TrainConfig(), "mse", "last").features()
    )
    pytest.importorskip("numba")
    from rnnlab.registry.manager import Registry

    numba = Registry().backend("numba").load()
    assert not plan.uncovered(numba.epoch_features)  # its fused epoch runs both
    assert epoch_runner(numba, plan) is not None
    # a runner declaring neither is not handed the plan: the core loop composes them
    declared = numba.epoch_features - {"bidirectional", "dropout"}
    assert plan.uncovered(declared) == {"bidirectional", "dropout"}
    numba.epoch_features = declared
    assert epoch_runner(numba, plan) is None


def final_params(tmp_path, name, *sets):
    exp, registry = tiny_experiment(tmp_path, *sets)
    return outcome(run_experiment(exp, registry, out_root=tmp_path / name)[1].path)


def test_dropout_changes_training_and_two_runs_with_one_seed_are_identical(tmp_path):
    plain = final_params(tmp_path, "plain", "model.layers=2")
    first = final_params(tmp_path, "first", *DROPOUT)
    second = final_params(tmp_path, "second", *DROPOUT)
    assert first[0] == second[0] and first[2] == second[2]
    assert all(np.array_equal(first[1][k], second[1][k]) for k in first[1])
    assert not np.array_equal(first[1]["rnn.weight_hh_l0"], plain[1]["rnn.weight_hh_l0"])


def test_evaluation_never_drops(tmp_path):
    exp, registry = tiny_experiment(tmp_path, *DROPOUT, "model.dropout=0.9")
    session = prepare(exp, registry)
    split = session.dataset.splits["val"]
    state = session.rngs["dropout"].bit_generator.state
    first = session.model.predict(split.x)
    assert np.array_equal(first, session.model.predict(split.x))
    session.model.loss(split.x, split.y, "mse", "last")
    assert session.rngs["dropout"].bit_generator.state == state


def test_dropout_zero_draws_nothing_in_a_run(tmp_path):
    exp, registry = tiny_experiment(tmp_path, "model.layers=2", *BIDIRECTIONAL)
    session = prepare(exp, registry)
    from rnnlab.training.loop import RunInfo, fit

    fresh = session.rngs["dropout"].bit_generator.state
    fit(session, registry, RunInfo(exp, session.dataset, session.model))
    assert session.rngs["dropout"].bit_generator.state == fresh


@pytest.mark.parametrize("at", [7, 2 * BATCHES_PER_EPOCH + 3])
def test_sigint_then_resume_with_dropout_is_exact(tmp_path, monkeypatch, at):
    sets = (*BIDIRECTIONAL, "model.dropout=0.3")
    path = started(tmp_path, monkeypatch, send(signal.SIGINT), at, *sets)
    assert_same_outcome(resumed(tmp_path, path, *sets), reference(tmp_path, *sets))


def test_a_bidirectional_run_with_lengths_and_dropout_trains(tmp_path):
    exp, registry = experiment(tmp_path, *BIDIRECTIONAL, "model.dropout=0.2", target="every")
    summary, _ = run_experiment(exp, registry, out_root=tmp_path / "runs")
    assert summary["status"] == "finished"
    assert summary["metrics"]["test"]["loss"] < 0.69  # better than chance on 2 classes


def run_cli(tmp_path, path, *sets, plugins=()):
    args = ["run", str(path), "--out", str(tmp_path / "runs")]
    for p in plugins:
        args += ["--plugin", p]
    for s in sets:
        args += ["--set", s]
    return CliRunner().invoke(main, args, catch_exceptions=True)


def test_stateful_mode_refuses_bidirectional_with_one_clear_message(tmp_path):
    from tests.support.chargen import SENTENCE

    path = tmp_path / "char.toml"
    path.write_text(
        f'[task]\nname = "chargen"\ntext = "{SENTENCE}"\nrepeat = 20\n'
        f'mode = "stateful"\nwindow = 5\n'
        f"[model]\nhidden_size = 8\nbidirectional = true\n[train]\nepochs = 1\n"
    )
    result = run_cli(tmp_path, path)
    text = result.output
    assert result.exit_code == 2, (text, result.exception)
    assert "Traceback" not in text and len(text.strip().splitlines()) <= 2, text
    for words in ("[model.bidirectional]", "stateful", "set model.bidirectional = false"):
        assert words in text, text


def test_a_backend_without_lengths_is_refused_bidirectional_variable_lengths(tmp_path):
    from tests.nn.test_lengths import EXPERIMENT

    path = tmp_path / "varlen.toml"
    path.write_text(EXPERIMENT.format(target="last", cell="rnn"))
    result = run_cli(
        tmp_path, path, "train.backend=nolengths", "model.bidirectional=true", plugins=[PLUGIN]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    for words in (
        "[train.backend]",
        "backend 'nolengths' does not support variable-length",
        "model.bidirectional needs it as well",
    ):
        assert words in result.output, result.output


def test_a_backend_without_lengths_runs_bidirectional_fixed_length(tmp_path):
    """Directions are composed by the core, so any backend runs them on full-length data."""
    exp, registry = tiny_experiment(
        tmp_path, *BIDIRECTIONAL, "train.backend=nolengths", plugins=[PLUGIN]
    )
    twin, _ = tiny_experiment(tmp_path, *BIDIRECTIONAL)
    a = outcome(run_experiment(exp, registry, out_root=tmp_path / "a")[1].path)
    b = outcome(run_experiment(twin, registry, out_root=tmp_path / "b")[1].path)
    assert all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


def test_fixed_masks_are_seeded():
    model = bi_model("rnn", layers=2, dropout=0.5)
    a, b = fixed_masks(model, (4, 3), seed=1), fixed_masks(model, (4, 3), seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_a_run_from_before_bidirectional_and_dropout_resumes(tmp_path, monkeypatch):
    """A checkpoint written before the two keys and the dropout stream existed: its config
    lacks them and its generators lack "dropout"; it resumes as the same experiment, exactly."""
    from rnnlab.store import checkpoint as ckpt_module
    from rnnlab.store.checkpoint import config_differences, fingerprint
    from rnnlab.store.rundir import CHECKPOINT, RunDir

    exp, _ = tiny_experiment(tmp_path)
    new = exp.to_dict()
    old = {
        t: {k: v for k, v in vs.items() if k not in ("bidirectional", "dropout")}
        for t, vs in new.items()
    }
    assert config_differences(old, new) == [] and fingerprint(old) == fingerprint(new)

    path = started(tmp_path, monkeypatch, send(signal.SIGINT), 7)
    run_dir = RunDir(path)
    saved = run_dir.load_checkpoint()
    del saved.generators["dropout"]  # as an older rnnlab wrote it
    saved.config = {
        t: {k: v for k, v in vs.items() if k not in ("bidirectional", "dropout")}
        for t, vs in saved.config.items()
    }
    with open(path / CHECKPOINT, "wb") as f:
        ckpt_module.save(saved, f)
    assert_same_outcome(resumed(tmp_path, path), reference(tmp_path))


def test_stateful_training_drops_reproducibly(tmp_path):
    """Truncated BPTT over streams (chargen) draws a mask per chunk from the run's generator."""
    from tests.support.chargen import SENTENCE
    from tests.support.chargen import experiment as chargen

    task = {"text": SENTENCE, "repeat": 20, "mode": "stateful", "window": 5}
    runs = {}
    for name, dropout in (("a", 0.3), ("b", 0.3), ("plain", 0.0)):
        exp, registry = chargen(tmp_path, task, {"layers": 2, "dropout": dropout}, {"epochs": 2})
        runs[name] = outcome(run_experiment(exp, registry, out_root=tmp_path / name)[1].path)
    (fa, pa, ha), (fb, pb, hb), (_, plain, _) = runs["a"], runs["b"], runs["plain"]
    assert fa == fb and ha == hb and all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert not np.array_equal(pa["rnn.weight_hh_l0"], plain["rnn.weight_hh_l0"])


def test_runs_lists_bidirectional_and_dropout():
    from rnnlab.cli.runs_cmd import settings
    from rnnlab.store.records import RunRecord

    run = RunRecord.__new__(RunRecord)
    run.config = {"model": {"hidden_size": 8, "layers": 2, "bidirectional": True, "dropout": 0.25}}
    assert settings(run) == "H=8x2 bidirectional dropout=0.25"
    run.config = {"model": {"hidden_size": 8, "layers": 1}}  # a run from before the keys
    assert settings(run) == "H=8"


def test_the_shipped_bidirectional_tagging_experiment_is_the_baseline_of_the_same_size():
    """dyck_matched_bidirectional.toml differs from dyck_matched.toml only in the direction
    and a hidden size giving about the same number of parameters (the README's comparison)."""
    from rnnlab.cli.common import load_experiment
    from tests.support.paths import EXPERIMENTS

    (uni, registry), (bi, _) = (
        load_experiment(str(EXPERIMENTS / f"dyck_matched{s}.toml"), [], [])
        for s in ("", "_bidirectional")
    )
    assert uni.task == bi.task and uni.train == bi.train
    assert bi.model.bidirectional and not uni.model.bidirectional
    assert (bi.model.cell, bi.model.layers) == (uni.model.cell, uni.model.layers)
    counts = [sum(p.size for p in prepare(e, registry).model.params.values()) for e in (uni, bi)]
    assert counts == [1314, 1366]  # within 4%


def test_a_bidirectional_run_records_what_the_diagnostics_can_measure(tmp_path):
    """The gradient flow of a bidirectional model is measured in both directions, each its own
    curve, and the spectral radii of both directions are recorded."""
    exp, registry = tiny_experiment(tmp_path, *BIDIRECTIONAL, "model.dropout=0.2")
    summary, _ = run_experiment(exp, registry, out_root=tmp_path / "runs")
    diagnostics = summary["diagnostics"]
    assert "note" not in diagnostics
    forward, reverse = (diagnostics[f"gradient_norm_by_step{s}"] for s in ("", "_reverse"))
    assert len(forward) == len(reverse) > 1
    assert set(diagnostics["health"]["spectral_radius"]) == {"l0", "l0_reverse", "l1", "l1_reverse"}


def test_the_python_api_loads_a_bidirectional_run_and_takes_pytorchs_state_layout(tmp_path):
    import rnnlab
    from tests.support.tiny_runs import write_tiny

    run = rnnlab.run(
        write_tiny(tmp_path),
        set=[*BIDIRECTIONAL, "model.dropout=0.2"],
        out=tmp_path / "runs",
        quiet=True,
    )
    model = rnnlab.load(run.dir).model
    x = np.random.default_rng(0).normal(size=(5, 3, 1))
    first = model.forward(x)
    assert first.hidden.shape == (5, 3, 2 * 8)
    assert first.state.shape == (2 * 2, 3, 8)  # h_n: [layers * 2, N, H]
    np.testing.assert_array_equal(model.predict(x), first.outputs)  # never drops
    again = model.forward(x, state=first.state)  # h_0 in the same layout
    assert again.outputs.shape == first.outputs.shape
    with pytest.raises(ValueError, match=r"\[layers \* 2, N, hidden_size\]"):
        model.forward(x, state=first.state[:2])
