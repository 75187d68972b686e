"""Interchange (issue 15): ONNX graphs that onnxruntime runs as rnnlab predicts, safetensors with
PyTorch's names that load back as a run, and the tracking plugin's TensorBoard / MLflow records.

The ONNX, safetensors and TensorBoard packages are in the test extra; MLflow (heavy) is not, and
its test skips without it."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import rnnlab
from rnnlab.cli import main
from rnnlab.errors import PluginError, RnnlabError
from rnnlab.experiment.schema import ModelConfig
from rnnlab.nn.model import Model, Shape, init_params
from rnnlab.registry.manager import Registry
from tests.support.paths import ROOT, SUPPORT

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rnnlab.export.onnx_graph import build_onnx  # noqa: E402  (needs onnx)

SINE = ROOT / "experiments" / "sine.toml"
VARLEN = SUPPORT / "varlen_task.py"


def session(model_proto):
    return ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])


def padded(rng, T, N, inputs, garbage=0.0):
    """Random ``x [T, N, inputs]`` and lengths in 1..T (one full), ``garbage`` in the padding."""
    lengths = rng.integers(1, T + 1, size=N)
    lengths[0] = T
    x = rng.normal(size=(T, N, inputs))
    valid = np.arange(T)[:, None] < lengths[None, :]
    return np.where(valid[..., None], x, garbage), lengths


def relative(got, want) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


CASES = [
    (cell, nl) for cell, nl in [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
]


@pytest.mark.parametrize("cell,nonlinearity", CASES)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("target", ["last", "every"])
def test_onnx_graph_runs_in_onnxruntime_as_predict(
    cell, nonlinearity, layers, bidirectional, target
):
    rng = np.random.default_rng(layers * 10 + bidirectional)
    cfg = ModelConfig(
        cell=cell,
        hidden_size=6,
        layers=layers,
        nonlinearity=nonlinearity,
        bidirectional=bidirectional,
    )
    params = init_params(cfg, Shape(3, 2), rng)
    model = Model(cfg, Registry().backend("numpy").load(), params)
    graph = build_onnx(
        params,
        cell=cell,
        layers=layers,
        hidden_size=6,
        bidirectional=bidirectional,
        nonlinearity=nonlinearity,
        target=target,
    )
    onnx.checker.check_model(graph, full_check=True)
    ops = [n.op_type for n in graph.graph.node if n.op_type in ("RNN", "LSTM", "GRU")]
    assert ops == [{"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]] * layers
    run = session(graph)
    for T, N in ((7, 5), (3, 9)):  # dynamic T and N
        x, lengths = padded(rng, T, N, 3)
        want = model.predict(x, target, lengths=lengths)
        # what sits in the padding must not matter to onnxruntime either
        x_dirty = np.where((np.arange(T)[:, None] < lengths)[..., None], x, 50.0)
        got = run.run(None, {"x": x_dirty.astype(np.float32), "lengths": lengths.astype(np.int32)})[
            0
        ]
        assert got.shape == want.shape and got.dtype == np.float32
        assert relative(got, want) < 1e-5
        full = run.run(None, {"x": x.astype(np.float32), "lengths": np.full(N, T, dtype=np.int32)})[
            0
        ]
        assert relative(full, model.predict(x, target)) < 1e-5


def test_what_onnx_cannot_express_is_refused_clearly():
    params = {"rnn.weight_ih_l0": np.zeros((4, 1)), "head.bias": np.zeros(1)}
    with pytest.raises(RnnlabError, match="cell 'ligru' has no ONNX operator.*rnn, lstm, gru"):
        build_onnx(
            params,
            cell="ligru",
            layers=1,
            hidden_size=2,
            bidirectional=False,
            nonlinearity="tanh",
            target="last",
        )


def varlen_run(tmp_path, cell, *, target="last", layers=1, bidirectional=False):
    experiment = {
        "experiment": {"name": f"v{cell}", "seed": 3, "plugins": [str(VARLEN)]},
        "task": {"name": "varlen", "target": target, "sequences": 60},
        "model": {"cell": cell, "hidden_size": 8, "layers": layers, "bidirectional": bidirectional},
        "train": {"epochs": 2, "batch_size": 16},
    }
    return rnnlab.run(experiment, out=tmp_path / "runs", quiet=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "cell,layers,bidirectional,target",
    [
        ("rnn", 1, False, "last"),
        ("lstm", 2, True, "last"),
        ("gru", 2, True, "last"),
        ("gru", 2, True, "every"),
    ],
)
def test_bar_trained_varlen_runs_export_and_onnxruntime_agrees(
    tmp_path, cell, layers, bidirectional, target
):
    run = varlen_run(tmp_path, cell, target=target, layers=layers, bidirectional=bidirectional)
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(
        main, ["export", str(run.dir), "--format", "onnx", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    x, lengths = padded(np.random.default_rng(5), 9, 40, 1)
    want = run.model.predict(x, lengths=lengths)
    got = session(graph).run(
        None, {"x": x.astype(np.float32), "lengths": lengths.astype(np.int32)}
    )[0]
    if target == "every":  # padded steps mean nothing (both give the head's bias there)
        valid = (np.arange(9)[:, None] < lengths)[..., None]
        got, want = np.where(valid, got, 0), np.where(valid, want, 0)
    assert relative(got, want) < 1e-4


def test_export_errors_are_one_message(tmp_path, monkeypatch):
    run = varlen_run(tmp_path, "rnn")
    result = CliRunner().invoke(
        main, ["export", str(run.dir), "--format", "onnx", "--out", str(tmp_path / "no" / "m.onnx")]
    )
    assert result.exit_code == 2 and "its folder" in result.output
    result = CliRunner().invoke(
        main, ["export", str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code == 2 and "error:" in result.output
    monkeypatch.setitem(sys.modules, "onnx", None)
    from rnnlab.export import export

    with pytest.raises(
        RnnlabError,
        match=r"needs the 'onnx' package: pip install "
        r"'rnnlab\[onnx\]'",
    ):
        export(run.dir, "onnx", tmp_path / "m.onnx")
    with pytest.raises(RnnlabError, match="unknown export format 'tflite'"):
        export(run.dir, "tflite", tmp_path / "m.tflite")


# -- safetensors -----------------------------------------------------------------------------
def test_safetensors_has_pytorch_names_and_loads_back_as_a_run(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    run = varlen_run(tmp_path, "lstm", layers=2, bidirectional=True)
    out = tmp_path / "model.safetensors"
    result = CliRunner().invoke(
        main, ["export", str(run.dir), "--format", "safetensors", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    tensors = safetensors_numpy.load_file(str(out))
    assert sorted(tensors) == sorted(run.params)
    assert "rnn.weight_hh_l1_reverse" in tensors and "head.weight" in tensors
    for name, value in run.params.items():
        np.testing.assert_array_equal(tensors[name], value)
    same = rnnlab.load(out)
    assert same.config == run.config and same.model.target == run.model.target
    x, lengths = padded(np.random.default_rng(2), 9, 7, 1)
    np.testing.assert_array_equal(same.model.predict(x, lengths), run.model.predict(x, lengths))
    with pytest.raises(RnnlabError, match="holds no checkpoint"):
        same.resume()
    onnx_file = tmp_path / "from_weights.onnx"  # the file exports on to ONNX by itself
    result = CliRunner().invoke(
        main, ["export", str(out), "--format", "onnx", "--out", str(onnx_file)]
    )
    assert result.exit_code == 0, result.output
    got = session(onnx.load(str(onnx_file))).run(
        None, {"x": x.astype(np.float32), "lengths": lengths.astype(np.int32)}
    )[0]
    assert relative(got, run.model.predict(x, lengths)) < 1e-5


def test_safetensors_loads_into_pytorch_with_load_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    run = varlen_run(tmp_path, "gru", layers=2, bidirectional=True)
    out = rnnlab.export.export(run, "safetensors", tmp_path / "m.safetensors")
    net = torch.nn.Module()
    net.rnn = torch.nn.GRU(1, 8, num_layers=2, bidirectional=True).double()
    net.head = torch.nn.Linear(16, 1).double()
    net.load_state_dict(load_file(str(out)), strict=True)


# -- tracking --------------------------------------------------------------------------------
def scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> step -> value from the event files directly in ``run_dir``, read with
    tensorboardX's Event protobuf (TFRecord framing: length, crc, data, crc)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, dict[int, float]] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


@pytest.mark.slow
def test_bar_tensorboard_events_hold_loss_and_val_loss_of_every_epoch(tmp_path):
    pytest.importorskip("tensorboardX")
    run = rnnlab.run(
        SINE, set=["train.epochs=4", "tracking.tensorboard=true"], out=tmp_path, quiet=True
    )
    found = scalars(run.dir)
    for key, tag in (
        ("loss", "loss"),
        ("val_loss", "val_loss"),
        ("lr", "lr"),
        ("seconds", "seconds_per_epoch"),
    ):
        assert sorted(found[tag]) == [1, 2, 3, 4]
        np.testing.assert_allclose(
            [found[tag][r["epoch"]] for r in run.history], [r[key] for r in run.history], rtol=1e-6
        )
    assert found["final/test/mse"][4] == pytest.approx(run.metrics["test"]["mse"], rel=1e-6)
    assert list(run.dir.glob("hparams/events.out.tfevents.*"))  # the config as hparams
    assert run.config["tracking"] == {"tensorboard": True, "mlflow": ""}


def test_a_tracker_that_cannot_start_stops_the_run_before_the_first_epoch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(
        PluginError,
        match=r"\[tracking\.tensorboard\]: tracker tensorboard "
        r"needs tensorboardX: pip install "
        r"'rnnlab\[tensorboard\]'",
    ):
        rnnlab.run(
            SINE, set=["train.epochs=2", "tracking.tensorboard=true"], out=tmp_path, quiet=True
        )
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "metrics.jsonl").exists()  # no epoch ran, none was lost
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"


def test_tracking_keys_are_validated(tmp_path):
    with pytest.raises(
        rnnlab.ConfigError,
        match=r"\[tracking\.tensorbord\]: unknown key; did "
        r"you mean 'tensorboard'",
    ):
        rnnlab.run(SINE, set=["tracking.tensorbord=true"], out=tmp_path, quiet=True)
    with pytest.raises(rnnlab.ConfigError, match=r"\[tracking\.tensorboard\]: must be true or"):
        rnnlab.run(SINE, set=["tracking.tensorboard=1"], out=tmp_path, quiet=True)


@pytest.mark.slow
def test_mlflow_logs_params_epochs_final_metrics_and_files(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # a sqlite store keeps artifacts in ./mlruns
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = rnnlab.run(
        SINE, set=["train.epochs=3", f"tracking.mlflow={uri}"], out=tmp_path / "runs", quiet=True
    )
    client = MlflowClient(uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("sine").experiment_id])
    assert logged.info.status == "FINISHED" and logged.info.run_name == run.dir.name
    assert logged.data.params["model.cell"] == run.config["model"]["cell"]
    history = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2, 3]
    np.testing.assert_allclose([m.value for m in history], [r["val_loss"] for r in run.history])
    assert logged.data.metrics["test.mse"] == pytest.approx(run.metrics["test"]["mse"])
    files = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.toml", "metrics.jsonl", "summary.json", "params.npz"} <= files


@pytest.mark.slow
def test_a_resumed_run_goes_on_in_the_same_records(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    monkeypatch.chdir(tmp_path)  # a sqlite store keeps artifacts in ./mlruns
    with_mlflow = _has("mlflow")  # checked too when installed; TensorBoard alone otherwise
    sets = ["train.epochs=2", "train.schedule=constant", "tracking.tensorboard=true"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if with_mlflow:
        sets.append(f"tracking.mlflow={uri}")
    run = rnnlab.run(SINE, set=sets, out=tmp_path / "runs", quiet=True)
    run.resume(set=["train.epochs=4"], quiet=True)
    found = scalars(run.dir)
    assert sorted(found["val_loss"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(
        [found["val_loss"][r["epoch"]] for r in run.history],
        [r["val_loss"] for r in run.history],
        rtol=1e-6,
    )
    if with_mlflow:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        (logged,) = client.search_runs([client.get_experiment_by_name("sine").experiment_id])
        assert logged.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(logged.info.run_id, "val_loss")]
        assert steps == [1, 2, 3, 4]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_an_mlflow_uri_that_cannot_be_opened_stops_the_run_before_the_first_epoch(tmp_path):
    pytest.importorskip("mlflow")
    with pytest.raises(PluginError, match=r"\[tracking\.mlflow\]: tracker mlflow cannot start: "):
        rnnlab.run(
            SINE,
            set=["train.epochs=2", "tracking.mlflow=nosuchstore://x"],
            out=tmp_path,
            quiet=True,
        )
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "metrics.jsonl").exists()
