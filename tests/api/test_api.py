"""The Python API (rnnlab.run, rnnlab.load, Run, TrainedModel): the same runs, errors and files as
the command line, a loaded model that predicts as PyTorch does from the same params.npz, states
that continue a sequence, dict experiments with plugin files, resume, generate, and progress."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

import rnnlab
from rnnlab.cli import main
from rnnlab.display.terminal import live_bar
from tests.support.paths import ROOT
from tests.support.tiny_runs import assert_same_outcome, write_tiny

SINE = ROOT / "experiments" / "sine.toml"
CHARGEN = ROOT / "experiments" / "chargen.toml"

SUM_TASK = '''\
"""Task plugin `running_sum`: the sum of a sequence's values, read at its last step."""
from rnnlab.plugin import Dataset, Option, Split, Task, TaskSpec, hookimpl


class SumTask(Task):
    def build(self, rng):
        def split(n):
            x = rng.normal(size=(self.options["length"], n, 1))
            return Split(x, x.sum(axis=0))
        return Dataset({"train": split(64), "val": split(16), "test": split(16)}, input_size=1,
                       output_size=1, loss="mse", target="last")

    def generate(self, model, saved, prime, length, temperature, top_k, rng):
        raise ValueError("sums are not text")


@hookimpl
def register_tasks():
    return [TaskSpec("running_sum", SumTask, (Option("length", int, 6, "steps", gt=0),))]
'''


def tiny_run(tmp_path, *sets, **kwargs):
    return rnnlab.run(write_tiny(tmp_path), set=sets, out=tmp_path / "runs", quiet=True, **kwargs)


def cli_error(*args) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 2, result.output
    return result.output.strip()


# -- running ---------------------------------------------------------------------------------
def test_a_run_is_the_command_lines_run(tmp_path):
    run = tiny_run(tmp_path)
    assert run.status == "finished" and run.dir.parent == tmp_path / "runs"
    assert run.summary == json.loads((run.dir / "summary.json").read_text())
    assert run.metrics == run.summary["metrics"] and set(run.metrics) == {"train", "val", "test"}
    assert [r["epoch"] for r in run.history] == [1, 2, 3, 4]
    assert run.config["model"]["hidden_size"] == 8 and run.config["train"]["epochs"] == 4
    assert run.params.keys() == {
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_ih_l0",
        "rnn.bias_hh_l0",
        "head.weight",
        "head.bias",
    }
    result = CliRunner().invoke(
        main, ["run", str(write_tiny(tmp_path)), "--out", str(tmp_path / "cli"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert_same_outcome(run.dir, Path(json.loads(result.stdout)["run_dir"]))


@pytest.mark.parametrize(
    "sets",
    [["train.epoch=5"], ["model.cell=lstn"], ["task.window=0"], ["train.backend=nope"], ["oops"]],
)
def test_errors_are_the_command_lines_as_exceptions(tmp_path, sets):
    path = write_tiny(tmp_path)
    with pytest.raises(rnnlab.ConfigError) as caught:
        rnnlab.run(path, set=sets, out=tmp_path / "runs", quiet=True)
    args = [a for s in sets for a in ("--set", s)]
    assert (
        cli_error("run", str(path), *args, "--out", str(tmp_path / "runs"))
        == f"error: {caught.value}"
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_missing_file_and_a_wrong_type_are_clear(tmp_path):
    with pytest.raises(rnnlab.ConfigError, match="nope.toml: no such file"):
        rnnlab.run(tmp_path / "nope.toml", quiet=True)
    with pytest.raises(TypeError, match="path or a dict, not int"):
        rnnlab.run(3, quiet=True)


def test_a_dict_is_validated_like_a_file(tmp_path):
    with pytest.raises(rnnlab.ConfigError) as caught:
        rnnlab.run({"task": {"name": "sine"}, "train": {"epoch": 5}}, quiet=True)
    assert str(caught.value).startswith(
        "<experiment>: [train.epoch]: unknown key; did you mean 'epochs'?"
    )
    with pytest.raises(rnnlab.ConfigError, match=r"\[task.name\]: unknown task 'sin'"):
        rnnlab.run({"task": {"name": "sin"}}, quiet=True)


def test_a_dict_experiment_loads_a_plugin_file(tmp_path, monkeypatch):
    (tmp_path / "sum_task.py").write_text(SUM_TASK)
    monkeypatch.chdir(tmp_path)
    experiment = {
        "experiment": {"name": "sums", "plugins": ["sum_task.py"]},
        "task": {"name": "running_sum", "length": 4},
        "model": {"hidden_size": 6},
        "train": {"epochs": 2, "batch_size": 16},
    }
    run = rnnlab.run(experiment, quiet=True)
    assert run.status == "finished" and run.dir.name.startswith("sums-")
    assert experiment["experiment"]["plugins"] == ["sum_task.py"]  # the caller's dict untouched
    assert run.config["experiment"]["plugins"] == [str(tmp_path / "sum_task.py")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the recorded absolute path finds the plugin from anywhere
    model = rnnlab.load(tmp_path / run.dir).model
    assert (model.loss, model.target, model.input_size) == ("mse", "last", 1)
    assert model.predict(np.ones((4, 3, 1))).shape == (3, 1)


def test_one_string_is_one_override_and_a_broken_plugin_is_a_warning(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.warns(UserWarning, match=r"plugin broken .*failed: RuntimeError: boom") as seen:
        run = rnnlab.run(
            write_tiny(tmp_path),
            set="train.epochs=1",
            plugins=str(broken),
            out=tmp_path / "runs",
            quiet=True,
        )
    assert seen[0].filename == __file__  # the warning points at the caller's line
    assert run.status == "finished" and len(run.history) == 1


def test_a_plugins_exception_is_the_command_lines_plugin_error(tmp_path, monkeypatch):
    (tmp_path / "sum_task.py").write_text(SUM_TASK)
    monkeypatch.chdir(tmp_path)
    run = rnnlab.run(
        {
            "experiment": {"plugins": ["sum_task.py"]},
            "task": {"name": "running_sum"},
            "train": {"epochs": 1},
        },
        quiet=True,
    )
    with pytest.raises(rnnlab.PluginError) as caught:
        run.generate("x")
    assert "failed in task 'running_sum' generate()" in str(caught.value)
    assert "ValueError: sums are not text" in str(caught.value)
    assert isinstance(caught.value.__cause__, ValueError)  # the original, for a traceback
    assert cli_error("generate", str(run.dir), "--prime", "x") == f"error: {caught.value}"


def test_quiet_shows_nothing_and_otherwise_progress_and_the_table(tmp_path, capsys):
    tiny_run(tmp_path)
    assert capsys.readouterr() == ("", "")
    run = rnnlab.run(write_tiny(tmp_path), set=["train.epochs=2"], out=tmp_path / "runs")
    out = capsys.readouterr().out
    assert "epoch 1/2  loss" in out and "epoch 2/2  loss" in out  # not a terminal: lines
    assert "tiny: sine on numpy" in out and f"run saved in {run.dir}" in out


# -- loading ---------------------------------------------------------------------------------
def test_load_reads_a_run_made_by_the_command_line(tmp_path):
    result = CliRunner().invoke(
        main, ["run", str(write_tiny(tmp_path)), "--out", str(tmp_path), "--json"]
    )
    summary = json.loads(result.stdout)
    run = rnnlab.load(summary["run_dir"])
    assert run.metrics == summary["metrics"] and len(run.history) == 4
    assert repr(run) == f"Run({summary['run_dir']!r}, status='finished')"
    with np.load(run.dir / "params.npz") as saved:
        assert all(np.array_equal(saved[k], v) for k, v in run.params.items())


def test_history_skips_a_torn_last_line_as_runs_and_show_do(tmp_path):
    run = tiny_run(tmp_path)
    with open(run.dir / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 5, "lo')  # what a run killed during the append leaves
    history = rnnlab.load(run.dir).history
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    shown = CliRunner().invoke(main, ["show", str(run.dir)])
    assert shown.exit_code == 0, shown.output


@pytest.mark.parametrize(
    "experiment, where",
    [
        ({"task": {"name": "sine", 1: 2}}, r"<experiment>: \[task\]: key 1 is int"),
        ({("train",): {}, "task": {"name": "sine"}}, r"<experiment>: key \('train',\) is tuple"),
        ({"task": {"name": "sine", "x": [{None: 1}]}}, r"\[task.x\]: key None is NoneType"),
    ],
)
def test_a_dict_key_that_is_not_a_string_is_a_config_error(tmp_path, experiment, where):
    with pytest.raises(rnnlab.ConfigError, match=where + "; keys must be strings"):
        rnnlab.run(experiment, out=tmp_path, quiet=True)


def test_none_for_overrides_or_plugins_is_none(tmp_path):
    run = tiny_run(tmp_path, plugins=None)
    assert run.status == "finished"
    assert rnnlab.run(write_tiny(tmp_path), set=None, out=tmp_path, quiet=True).history
    assert rnnlab.load(run.dir, plugins=None).history
    with pytest.raises(TypeError, match="a string, a path or a list of them, not int"):
        rnnlab.run(write_tiny(tmp_path), set=3, out=tmp_path, quiet=True)


def test_load_refuses_what_is_not_a_run_directory(tmp_path):
    with pytest.raises(rnnlab.RnnlabError, match="no such run directory"):
        rnnlab.load(tmp_path / "missing")
    with pytest.raises(rnnlab.RnnlabError, match=r"not a run directory \(no config.toml\)"):
        rnnlab.load(tmp_path)


def test_a_run_recorded_without_loss_and_target_still_loads(tmp_path):
    run = tiny_run(tmp_path)
    x = np.random.default_rng(0).normal(size=(5, 7, 1))
    expected = run.model.predict(x)
    summary = json.loads((run.dir / "summary.json").read_text())
    del summary["loss"], summary["target"]  # as runs written before the API recorded them
    (run.dir / "summary.json").write_text(json.dumps(summary))
    old = rnnlab.load(run.dir)
    assert (old.model.loss, old.model.target) == ("mse", "last")  # from the task's data
    assert np.array_equal(old.model.predict(x), expected)


def test_predict_names_the_shape_it_needs(tmp_path):
    model = tiny_run(tmp_path).model
    with pytest.raises(ValueError, match=r"time-major \[T, N, 1\].*got shape \[5, 2\]"):
        model.predict(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"got shape \[5, 2, 3\]"):
        model.predict(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match=r"state arrays must be \[layers, N, hidden_size\]"):
        model.forward(np.zeros((5, 2, 1)), state=np.zeros((1, 3, 8)))


@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("lstm", 2), ("gru", 2)])
def test_state_continues_a_sequence(tmp_path, cell, layers):
    model = tiny_run(
        tmp_path, f"model.cell={cell}", f"model.layers={layers}", "train.epochs=1"
    ).model
    x = np.random.default_rng(1).normal(size=(9, 4, 1))
    whole = model.forward(x)
    first = model.forward(x[:3])
    rest = model.forward(x[3:], state=first.state)
    np.testing.assert_allclose(
        np.concatenate([first.hidden, rest.hidden]), whole.hidden, rtol=0, atol=1e-14
    )
    np.testing.assert_allclose(rest.outputs, whole.outputs, rtol=0, atol=1e-14)
    states = whole.state if cell == "lstm" else (whole.state,)
    assert [s.shape for s in states] == [(layers, 4, 8)] * len(states)
    assert np.array_equal(states[0][-1], whole.hidden[-1])  # the top layer's last h


def padded_batch(rng, lengths, T, inputs):
    """A batch of sequences padded after their ends with values that must not matter."""
    x = rng.normal(size=(T, len(lengths), inputs))
    x[np.arange(T)[:, None] >= np.asarray(lengths)[None, :]] = 1e3  # garbage in the padding
    return x


@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("lstm", 2), ("gru", 2)])
def test_predict_with_lengths_gives_each_sequence_its_result_alone(tmp_path, cell, layers):
    model = tiny_run(
        tmp_path, f"model.cell={cell}", f"model.layers={layers}", "train.epochs=1"
    ).model
    lengths = [7, 1, 4, 7, 2]
    x = padded_batch(np.random.default_rng(3), lengths, 7, 1)
    batch = model.forward(x, lengths=np.array(lengths))
    assert np.array_equal(batch.outputs, model.predict(x, lengths=lengths))
    for n, length in enumerate(lengths):
        alone = model.forward(x[:length, n : n + 1])
        np.testing.assert_allclose(batch.outputs[n : n + 1], alone.outputs, rtol=0, atol=1e-13)
        np.testing.assert_allclose(
            batch.hidden[:length, n : n + 1], alone.hidden, rtol=0, atol=1e-13
        )
        assert not batch.hidden[length:, n].any()  # 0 after the sequence's end
        for got, want in zip(
            batch.state if cell == "lstm" else (batch.state,),
            alone.state if cell == "lstm" else (alone.state,),
            strict=True,
        ):
            np.testing.assert_allclose(got[:, n : n + 1], want, rtol=0, atol=1e-13)


def test_predict_with_lengths_on_every_step(tmp_path):
    text = "abcabd abca bdab cdaa bcab dcba " * 8
    run = rnnlab.run(
        {
            "task": {"name": "chargen", "text": text, "mode": "windows", "window": 6},
            "model": {"hidden_size": 6},
            "train": {"epochs": 1},
        },
        out=tmp_path,
        quiet=True,
    )
    model = run.model
    assert model.target == "every"
    lengths = [6, 3, 1]
    x = padded_batch(np.random.default_rng(4), lengths, 6, model.input_size)
    out = model.predict(x, lengths=lengths)
    assert out.shape == (6, 3, model.output_size)
    for n, length in enumerate(lengths):
        np.testing.assert_allclose(
            out[:length, n], model.predict(x[:length, n : n + 1])[:, 0], rtol=0, atol=1e-13
        )


def test_bad_lengths_are_named(tmp_path):
    model = tiny_run(tmp_path, "train.epochs=1").model
    x = np.zeros((4, 2, 1))
    for lengths, message in (
        ([1, 5], r"lengths must be <= T = 4"),
        ([0, 2], ">= 1"),
        ([1, 2, 3], r"shape \[N\] = \(2,\)"),
        ([1.0, 2.0], "integers"),
    ):
        with pytest.raises(ValueError, match=message):
            model.predict(x, lengths=lengths)


def test_sine_gru_predicts_as_pytorch_from_the_same_params(tmp_path):
    torch = pytest.importorskip("torch")
    run = rnnlab.run(SINE, set=["model.cell=gru", "train.epochs=3"], out=tmp_path, quiet=True)
    model = rnnlab.load(run.dir).model
    x = np.random.default_rng(2).uniform(-1, 1, size=(10, 50, 1))
    rnn, head = (
        torch.nn.GRU(1, 32, dtype=torch.float64),
        torch.nn.Linear(32, 1, dtype=torch.float64),
    )
    with np.load(run.dir / "params.npz") as saved:
        tensors = {k: torch.from_numpy(saved[k]) for k in saved.files}
    rnn.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("rnn.")})
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    with torch.no_grad():
        hs, h_n = rnn(torch.from_numpy(x))
        expected = head(hs[-1]).numpy()
    ours = model.forward(x)
    assert ours.outputs.shape == (50, 1)
    assert np.max(np.abs(model.predict(x) - expected)) <= 1e-12
    assert np.max(np.abs(ours.hidden - hs.numpy())) <= 1e-12
    assert np.max(np.abs(ours.state - h_n.numpy())) <= 1e-12
    lengths = np.random.default_rng(3).integers(1, 11, size=50)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths), enforce_sorted=False
    )
    with torch.no_grad():
        _, h_n = rnn(packed)
        expected = head(h_n[-1]).numpy()
    assert np.max(np.abs(model.predict(x, lengths=lengths) - expected)) <= 1e-12


# -- resume, generate ------------------------------------------------------------------------
def test_resume_trains_on_exactly_as_an_uninterrupted_run(tmp_path):
    short = tiny_run(tmp_path, "train.epochs=2")
    assert len(short.history) == 2
    assert short.resume(set=["train.epochs=4"], quiet=True) is short
    assert len(short.history) == 4 and short.summary["resumed"] == 1
    assert_same_outcome(short.dir, tiny_run(tmp_path).dir)
    with pytest.raises(rnnlab.RnnlabError, match="already finished its 4 epochs"):
        short.resume(quiet=True)


@pytest.mark.slow
def test_generate_is_the_command_lines(tmp_path):
    run = rnnlab.run(CHARGEN, out=tmp_path, quiet=True)
    assert (run.model.loss, run.model.target) == ("xent", "every")
    assert (
        "h" + run.generate("h", length=42, temperature=0)
        == "hello world this is a test of the RNN model"
    )
    text = run.generate("hello", 80, temperature=50, top_k=4, seed=1)
    result = CliRunner().invoke(
        main,
        [
            "generate",
            str(run.dir),
            "--prime",
            "hello",
            "--length",
            "80",
            "--temperature",
            "50",
            "--top-k",
            "4",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0 and result.stdout == "hello" + text + "\n"
    assert text != run.generate("hello", 80, temperature=50, top_k=4, seed=3)
    with pytest.raises(rnnlab.RnnlabError, match="character '!' of the prime"):
        run.generate("hi!")


def test_generate_refuses_a_task_without_text(tmp_path):
    with pytest.raises(rnnlab.RnnlabError, match="task 'sine' does not generate text"):
        tiny_run(tmp_path).generate("h")


# -- progress in Jupyter ---------------------------------------------------------------------
def test_progress_is_a_bar_on_a_terminal_and_in_a_notebook_with_widgets(monkeypatch):
    import io

    assert live_bar(Console(file=io.StringIO(), force_terminal=True, force_jupyter=False))
    assert not live_bar(Console(file=io.StringIO(), force_terminal=False, force_jupyter=False))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed: plain lines
    assert not live_bar(Console(file=io.StringIO(), force_jupyter=True))
    monkeypatch.setitem(sys.modules, "ipywidgets", type(sys)("ipywidgets"))
    assert live_bar(Console(file=io.StringIO(), force_jupyter=True))


NOTEBOOK_CELL = """
import sys
if {hide_widgets}:
    sys.modules["ipywidgets"] = None
import rnnlab
run = rnnlab.run({path!r}, set=["train.epochs=3"], out={out!r}, quiet={quiet})
print("status", run.status)
"""


def notebook_outputs(tmp_path, **fields) -> list[tuple[str, dict]]:
    """The messages a Jupyter kernel sends while a cell runs ``rnnlab.run``."""
    manager = pytest.importorskip("jupyter_client.manager")
    pytest.importorskip("ipykernel")
    km, kc = manager.start_new_kernel(
        kernel_name="python3",
        cwd=str(tmp_path),
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )
    try:
        code = NOTEBOOK_CELL.format(
            path=str(write_tiny(tmp_path)), out=str(tmp_path / "runs"), **fields
        )
        msg_id = kc.execute(code)
        out = []
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
            out.append((msg["msg_type"], msg["content"]))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def texts(outputs) -> str:
    return "\n".join(
        c.get("text", "") or c.get("data", {}).get("text/plain", "") for _, c in outputs
    )


@pytest.mark.slow
def test_in_a_notebook_progress_is_a_widget_and_quiet_is_silent(tmp_path):
    shown = notebook_outputs(tmp_path, hide_widgets=False, quiet=False)
    kinds = [k for k, _ in shown]
    assert "error" not in kinds, shown
    widgets = [
        c
        for k, c in shown
        if k == "display_data" and "application/vnd.jupyter.widget-view+json" in c["data"]
    ]
    assert len(widgets) == 1  # one live bar, redrawn in place
    assert "epoch 1/3  loss" not in texts(shown)  # no line per epoch beside the bar
    assert "finished" in texts(shown) and "ipywidgets" not in texts(shown)

    plain = notebook_outputs(tmp_path, hide_widgets=True, quiet=False)
    assert "epoch 1/3  loss" in texts(plain) and "epoch 3/3  loss" in texts(plain)
    assert 'install "ipywidgets"' not in texts(plain)  # rich's warning is never reached

    quiet = notebook_outputs(tmp_path, hide_widgets=False, quiet=True)
    assert [(k, c.get("text")) for k, c in quiet if k not in ("execute_input", "status")] == [
        ("stream", "status finished\n")
    ]


def test_import_rnnlab_stays_light():
    code = "import sys, rnnlab; print(sorted(m for m in sys.modules if m.startswith('rnnlab')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['rnnlab']"
