"""The benchmark scripts: their min-char-rnn baseline computes what rnnlab's reference computes,
and the scripts run end to end on tiny cases (one repeat; timing is never asserted)."""

import json
import sys

import numpy as np
import pytest

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import backends  # noqa: E402
import bars  # noqa: E402
import machine  # noqa: E402
from minchar import MinCharRnn  # noqa: E402

from rnnlab.experiment.config import ModelConfig, TrainConfig  # noqa: E402
from rnnlab.nn.model import Model  # noqa: E402
from rnnlab.registry.manager import Registry  # noqa: E402


def test_minchar_matches_the_reference_model():
    """min-char-rnn's summed loss and gradients over a chunk are k times rnnlab's mean ones
    (NumPy backend, PyTorch layout: W_ih = W_xh, W_hh, b_ih + b_hh = b_h, head = W_hy, b_y),
    and the final states agree."""
    V, H, k = 7, 5, 6
    net = MinCharRnn(V, H, seed=1)
    rng = np.random.default_rng(2)
    net.bh[:] = rng.standard_normal((H, 1)) * 0.1
    net.by[:] = rng.standard_normal((V, 1)) * 0.1
    inputs, targets = rng.integers(0, V, k), rng.integers(0, V, k)
    h0 = rng.standard_normal((H, 1)) * 0.5
    loss, grads, h_last = net.loss_and_grads(inputs, targets, h0)

    params = {
        "rnn.weight_ih_l0": net.Wxh.copy(),
        "rnn.weight_hh_l0": net.Whh.copy(),
        "rnn.bias_ih_l0": net.bh[:, 0].copy(),
        "rnn.bias_hh_l0": np.zeros(H),
        "head.weight": net.Why.copy(),
        "head.bias": net.by[:, 0].copy(),
    }
    model = Model(ModelConfig(hidden_size=H), Registry().backend("numpy").load(), params)
    x = np.eye(V)[inputs][:, None, :]  # [k, 1, V] one-hot
    state0 = [(h0[:, 0][None],)]  # layer 0's (h,), [1, H]
    value, g, final = model.loss_and_grads(x, targets[:, None], "xent", "every", state0)
    assert loss == pytest.approx(k * value, rel=1e-12)
    for mine, theirs in (
        ("Wxh", "rnn.weight_ih_l0"),
        ("Whh", "rnn.weight_hh_l0"),
        ("Why", "head.weight"),
    ):
        np.testing.assert_allclose(grads[mine], k * g[theirs], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["bh"][:, 0], k * g["rnn.bias_ih_l0"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["by"][:, 0], k * g["head.bias"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(h_last[:, 0], final[0][0][0], rtol=1e-12)


def test_minchar_step_clips_then_adagrad():
    net = MinCharRnn(3, 2, learning_rate=0.1, clip=5.0)
    before = net.Whh.copy()
    grads = {name: np.zeros_like(getattr(net, name)) for name in ("Wxh", "Whh", "Why", "bh", "by")}
    grads["Whh"][:] = [[10.0, -1.0], [0.5, -7.0]]
    net.step(grads)
    g = np.array([[5.0, -1.0], [0.5, -5.0]])  # clipped to [-5, 5]
    np.testing.assert_allclose(net.Whh, before - 0.1 * g / np.sqrt(g * g + 1e-8))
    np.testing.assert_array_equal(net.memory["Whh"], g * g)


def test_contender_names_and_thread_setting():
    assert backends.parse_contender("numba-1t") == ("numba", 1)
    assert backends.parse_contender("numba") == ("numba", None)
    assert backends.parse_contender("my-backend") == ("my-backend", None)
    train = TrainConfig()
    assert backends.with_threads(train, None) is train
    forced = backends.with_threads(train, 1)
    if backends.has_threads_setting():
        assert forced.threads == 1
    else:
        assert forced is train
        assert backends.usable_contenders(["numpy", "numba-1t"], lambda m: None) == ["numpy"]


def test_paired_ratio():
    r = backends.ratio([2.0, 6.0, 3.0], [1.0, 2.0, 1.0])
    assert r == {"median": 3.0, "min": 2.0, "max": 3.0}


def test_header_names_the_settings_and_warns_when_busy():
    info = machine.finish(machine.describe(with_torch=False))
    text = "\n".join(machine.header_lines(info))
    for name in ("machine:", "numpy", "numba", "blas:", "OPENBLAS_CORETYPE", "load average"):
        assert name in text
    info["load_average_start"] = [machine.IDLE_LOAD + 1, 0.0, 0.0]
    assert "not idle" in machine.idle_warning(info)
    info["load_average_start"] = [0.0, 0.0, 0.0]
    assert machine.idle_warning(info) is None


def test_backends_script_runs_a_tiny_case(capsys):
    backends.main(
        ["--repeats", "2", "--case", "3,4,32", "--backends", "numpy", "--no-torch", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert "cpu" in out["machine"] and "load_average_end" in out["machine"]
    (row,) = out["rows"]
    assert row["case"] == "rnn T=3 H=4 B=32" and row["dtype"] == "float64"
    assert len(row["seconds"]["numpy"]) == 2 and row["path"]["numpy"] == "core loop"


def test_bars_script_runs_the_char_row_on_numba(capsys):
    """numba and numpy through the core's stateful path and min-char-rnn, on one small module
    (about 3,000 train characters)."""
    bars.main(
        ["--row", "char", "--repeats", "1", "--char-modules", "colorsys", "--no-jax", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert [(v["against"], v["bar"]) for v in out["bars"]] == [
        ("min-char-rnn", 10),
        ("numpy", 3),
        ("jax", 2),
    ]
    assert all(v["pass"] in (True, False) for v in out["bars"][:2])
    assert out["bars"][2]["pass"] is None and out["bars"][2]["reason"] == "jax not measured"
    chars = {r["contender"]: r["chars"] for r in out["details"]}
    assert set(chars) == {"numba", "numpy", "min-char-rnn"}
    assert len(set(chars.values())) == 1  # the same characters for all three


def test_backends_script_runs_jax_and_torch_on_a_new_cell(capsys):
    """A cell PyTorch does not have (benchmarks/torchcells.py) and the four JAX contenders in
    their worker processes, beside numpy."""
    pytest.importorskip("optax")
    pytest.importorskip("torch")
    backends.main(["--repeats", "1", "--case", "3,4,32,mingru", "--backends", "numpy", "--json"])
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    jax = {"jax-step", "jax-epoch", "jax-step-1t", "jax-epoch-1t"}
    assert jax | {"numpy", "torch-1t", "torch-2t", "torch", "jax"} == set(row["seconds"])
    assert row["jax_variant"] in jax and row["seconds"]["jax"] == row["seconds"][row["jax_variant"]]
    assert all(row["warmup_s"][n] > 0 for n in jax)  # compile time, measured apart
    assert "epoch under jit, 1 thread" in row["path"]["jax-epoch-1t"]
    assert out["machine"]["versions"]["jax"]["jax"] and out["machine"]["date"]


def test_bars_name_the_rows_numba_cannot_run():
    """A row whose numba contender cannot run its cell says why; the others get a verdict."""

    class Named:
        def __init__(self, name):
            self.name = name

    lru = backends.Case(100, 128, 32, "lru")
    row = [b for b in bars.BARS if b.row == "lru100"]
    assert [(b.slower, b.bar) for b in row] == [("torch", 3), ("jax", 2), ("numba", 1.5)]
    groups = {
        lru: [Named("torch-1t"), Named("torch-2t"), Named("jax-epoch")],
        bars.GRU100: [Named("numba")],
    }
    times = {(lru, "torch-1t"): [2.0], (lru, "torch-2t"): [3.0], (lru, "jax-epoch"): [1.0]}
    times[(bars.GRU100, "numba")] = [0.5]
    unavailable = {lru: {"numba": "numba does not run lru"}, bars.GRU100: {}}
    out = bars.verdicts(row, groups, times, "numba", unavailable)
    assert [v["pass"] for v in out] == [None, None, None]
    assert {v["reason"] for v in out} == {"numba does not run lru"}
    groups[lru].append(Named("numba"))
    times[(lru, "numba")] = [0.25]
    out = bars.verdicts(row, groups, times, "numba", {})
    assert [(v["against"], v["ratio"]["median"], v["pass"]) for v in out] == [
        ("torch-1t", 8.0, True),
        ("jax-epoch", 4.0, True),
        ("numba on gru T=100 H=128 B=32", 2.0, True),
    ]
