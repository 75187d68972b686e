"""Every hook is documented in docs/hooks.md with its exact signature, every hook has a test of
its own here (named test_hook_<name>), and the examples in the reference load as plugins.

The first two tests read the hookspecs at test time, so a hook added to rnnlab/hookspecs.py
fails them until it is documented and tested.
"""

import ast
import inspect
import json
import re

import numpy as np
import pytest

from rnnlab import hookspecs
from rnnlab.cells import CellSpec
from rnnlab.errors import ConfigError, PluginError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.hookspecs import hookimpl
from rnnlab.registry.manager import Registry
from rnnlab.specs import (
    Backend,
    BackendSpec,
    Dataset,
    Option,
    Split,
    TableSpec,
    Task,
    TaskSpec,
)
from rnnlab.store.rundir import RunDir
from rnnlab.training.loop import RunInfo
from rnnlab.training.session import prepare
from tests.support.paths import ROOT
from tests.support.pluginkit import SMALL_SINE, registry_with, run, write_experiment

HOOKS_MD = ROOT / "docs" / "hooks.md"


def hookspec_signatures() -> dict[str, str]:
    """``{"on_epoch_end": "on_epoch_end(run, epoch, metrics)", ...}`` from rnnlab/hookspecs.py."""
    out = {}
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if getattr(fn, "rnnlab_spec", None) is not None:
            out[name] = f"{name}{inspect.signature(fn)}"
    return out


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_hookspecs_are_found():
    assert {"register_tasks", "on_epoch_end"} <= set(hookspec_signatures())


def test_every_hook_has_a_heading_with_its_exact_signature():
    headings = set(re.findall(r"^## `(.+)`\s*$", HOOKS_MD.read_text(), flags=re.M))
    missing = {sig for sig in hookspec_signatures().values() if sig not in headings}
    assert not missing, f"docs/hooks.md has no heading '## `...`' for: {sorted(missing)}"


def test_every_hook_has_a_test_of_its_own():
    tests = set()
    for path in [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/test_*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_hook_"):
                tests.add(node.name)
    missing = [
        name
        for name in hookspec_signatures()
        if not any(t == f"test_hook_{name}" or t.startswith(f"test_hook_{name}__") for t in tests)
    ]
    assert not missing, f"no test named test_hook_<name> (or test_hook_<name>__...) for {missing}"


@pytest.mark.parametrize("index", range(len(python_blocks(HOOKS_MD.read_text()))))
def test_hooks_md_examples_load_as_plugins(index, tmp_path):
    path = tmp_path / f"example_{index}.py"
    path.write_text(python_blocks(HOOKS_MD.read_text())[index])
    registry = Registry([path], strict=True, entry_points_=False)
    assert registry.plugins[path.stem].hooks  # implements at least one hook, all valid


# -- one test per hook -----------------------------------------------------------------------
class Constant(Task):
    def build(self, rng):
        x = np.ones((2, 6, 1))
        return Dataset(
            {s: Split(x, np.ones((6, 1))) for s in ("train", "val", "test")},
            input_size=1,
            output_size=1,
            loss="mse",
            target="last",
        )


def test_hook_register_tasks():
    class Tasks:
        @hookimpl
        def register_tasks(self):
            return [TaskSpec("constant", Constant, (), "ones")]

    registry = registry_with(Tasks())
    assert registry.task("constant").factory is Constant
    assert registry.plugins["p0"].tasks == ["constant"]
    assert registry.plugins["p0"].hooks == ["register_tasks"]


def test_hook_register_backends():
    class Never(Backend):
        name = "never"

    class Backends:
        @hookimpl
        def register_backends(self):
            return [BackendSpec("never", Never, "", lambda: "not on this machine")]

    registry = registry_with(Backends())
    assert registry.plugins["p0"].backends == ["never"]
    assert registry.backend("never").unavailable() == "not on this machine"


def test_hook_register_cells(tmp_path):
    class Cells:
        @hookimpl
        def register_cells(self):
            return [CellSpec("ligru", gates=2, description="light GRU: gates z, n")]

    registry = registry_with(Cells())
    assert registry.plugins["p0"].cells == ["ligru"]
    assert registry.cell("ligru").layer_shapes(3, 5)["weight_hh"] == (10, 5)
    assert {"rnn", "lstm", "gru", "ligru"} <= set(registry.cells)

    def load(cell):
        text = SMALL_SINE.format(epochs=1).replace("[model]", f"[model]\ncell = {cell!r}")
        path = write_experiment(tmp_path, text=text)
        return build_experiment(read_toml(path), registry, source=path)

    with pytest.raises(ConfigError, match="backend 'numpy' does not support cell 'ligru'"):
        prepare(load("ligru"), registry)  # the cell is known; the reference has no kernels for it
    with pytest.raises(
        ConfigError,
        match=r"\[model\.cell\].*'lgiru' is not valid; did you mean "
        r"'ligru'\? \(valid: 'rnn', 'lstm', 'gru', .*'ligru'\)",
    ):
        load("lgiru")


def test_hook_register_cells__a_built_in_cell_cannot_be_replaced():
    class Cells:
        @hookimpl
        def register_cells(self):
            return [CellSpec("lstm", gates=2)]

    registry = registry_with(Cells(), strict=False)
    assert registry.plugins["p0"].status.startswith(
        "failed: register_cells() returned cell 'lstm', which is built into rnnlab"
    )
    assert registry.cell("lstm").gates == 4


class Recorder:
    """Records every lifecycle call with the arguments it received."""

    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    @hookimpl
    def on_run_start(self, run):
        self.calls.append(("start", run.epoch, len(run.history)))

    @hookimpl
    def on_epoch_end(self, run, epoch, metrics):
        self.calls.append(("epoch", epoch, metrics["epoch"], run.epoch))
        return epoch == self.stop_at

    @hookimpl
    def on_run_end(self, run, summary):
        self.calls.append(("end", summary["status"], summary["epochs_run"]))


class Notify:
    @hookimpl
    def register_tables(self):
        return [
            TableSpec(
                "notify",
                (Option("email", str, "", "where to"), Option("every", int, 1, "epochs", gt=0)),
            )
        ]


def test_hook_register_tables(tmp_path):
    registry = registry_with(Notify())
    assert registry.plugins["p0"].tables == ["notify"]
    text = SMALL_SINE.format(epochs=1) + '\n[notify]\nemail = "a@b"\n'
    path = write_experiment(tmp_path, text=text)
    exp = build_experiment(read_toml(path), registry, source=path)
    assert exp.tables == {"notify": {"email": "a@b", "every": 1}}
    assert exp.to_dict()["notify"] == {"email": "a@b", "every": 1}  # config.toml records it
    plain = build_experiment(read_toml(write_experiment(tmp_path, epochs=1)), registry)
    assert plain.tables == {} and "notify" not in plain.to_dict()  # unset: configs unchanged
    with pytest.raises(ConfigError, match=r"\[notify\.emial\].*did you mean 'email'"):
        build_experiment(
            read_toml(write_experiment(tmp_path, text=text.replace("email", "emial"))), registry
        )
    with pytest.raises(ConfigError, match=r"\[notify\.every\].*must be > 0"):
        build_experiment(read_toml(write_experiment(tmp_path, text=text + "every = 0\n")), registry)
    with pytest.raises(ConfigError, match=r"unknown table; did you mean 'notify'"):
        build_experiment(
            read_toml(write_experiment(tmp_path, text=text.replace("[notify]", "[notfy]"))),
            registry,
        )


def test_hook_register_tables__one_table_declared_twice_names_both(tmp_path):
    registry = registry_with(Notify(), Notify())
    path = write_experiment(tmp_path, text=SMALL_SINE.format(epochs=1) + "\n[notify]\n")
    with pytest.raises(
        ConfigError,
        match=r"\[notify\]: table 'notify' is provided by more than "
        r"one plugin: p0 .* and p1 ",
    ):
        build_experiment(read_toml(path), registry, source=path)


def test_hook_register_tables__rnnlabs_own_tables_cannot_be_declared():
    class Train:
        @hookimpl
        def register_tables(self):
            return [TableSpec("train")]

    registry = registry_with(Train())
    assert "register_tables() returned table 'train'" in registry.plugins["p0"].status
    assert "train" not in registry.tables


def test_hook_on_run_start(tmp_path):
    rec = Recorder()
    run(write_experiment(tmp_path, epochs=2), registry_with(rec), tmp_path / "runs")
    assert rec.calls[0] == ("start", 0, 0)
    assert [c[0] for c in rec.calls].count("start") == 1


def test_hook_on_run_start__sees_a_ready_run(tmp_path):
    seen = {}

    class Look:
        @hookimpl
        def on_run_start(self, run):
            assert isinstance(run, RunInfo)
            seen["dir"] = run.run_dir
            seen["params"] = sorted(run.model.params)
            seen["train"] = len(run.dataset.splits["train"])

    _, run_dir = run(write_experiment(tmp_path, epochs=1), registry_with(Look()), tmp_path)
    assert seen["dir"] == run_dir.path and "head.weight" in seen["params"] and seen["train"] > 0


def test_hook_on_epoch_end(tmp_path):
    rec = Recorder()
    summary, _ = run(write_experiment(tmp_path, epochs=3), registry_with(rec), tmp_path / "runs")
    assert [c for c in rec.calls if c[0] == "epoch"] == [("epoch", e, e, e) for e in (1, 2, 3)]
    assert summary["status"] == "finished"


def test_hook_on_epoch_end__true_stops_the_run(tmp_path):
    rec = Recorder(stop_at=2)
    summary, run_dir = run(write_experiment(tmp_path, epochs=5), registry_with(rec), tmp_path)
    assert (summary["status"], summary["epochs_run"]) == ("stopped", 2)
    assert summary["stop_reason"] == "stopped by a plugin"
    assert len(run_dir.read_metrics()) == 2
    assert rec.calls[-1] == ("end", "stopped", 2)


def test_hook_on_run_end(tmp_path):
    rec = Recorder()
    summary, run_dir = run(write_experiment(tmp_path, epochs=2), registry_with(rec), tmp_path)
    assert rec.calls[-1] == ("end", "finished", 2)
    saved = json.loads((run_dir.path / "summary.json").read_text())
    assert saved["status"] == "finished"  # written before the hook is called


# -- plugin state in checkpoints -------------------------------------------------------------
EARLY_STOP = """
from rnnlab.hookspecs import hookimpl

counter = {"best": None, "waited": 0, "restored": 0}


@hookimpl
def on_epoch_end(metrics):
    best = counter["best"]
    if best is None or metrics["val_loss"] < 0.7 * best:  # improved by 30% or more
        counter.update(best=metrics["val_loss"], waited=0)
    else:
        counter["waited"] += 1
    return counter["waited"] >= 2


@hookimpl
def checkpoint_state():
    return {"best": counter["best"], "waited": counter["waited"]}


@hookimpl
def restore_state(state):
    counter.update(best=state["best"], waited=state["waited"])
    counter["restored"] += 1
"""

STOP_AT = """
from rnnlab.hookspecs import hookimpl

@hookimpl
def on_epoch_end(epoch):
    if epoch == {at}:
        raise KeyboardInterrupt
"""


def test_hook_checkpoint_state(tmp_path):
    class Counter:
        def __init__(self):
            self.epochs = 0

        @hookimpl
        def on_epoch_end(self):
            self.epochs += 1

        @hookimpl
        def checkpoint_state(self, run):
            assert isinstance(run, RunInfo)
            return {"epochs": self.epochs, "note": ["kept", 1.5, None, True]}

    class Nothing:
        @hookimpl
        def checkpoint_state(self):
            return None

    _, run_dir = run(
        write_experiment(tmp_path, epochs=3), registry_with(Counter(), Nothing()), tmp_path
    )
    state = run_dir.load_checkpoint().state
    assert state.plugin_state == {"p0": {"epochs": 3, "note": ["kept", 1.5, None, True]}}


def test_hook_checkpoint_state__must_be_json(tmp_path):
    class Bad:
        @hookimpl
        def checkpoint_state(self):
            return {"array": np.zeros(2)}

    with pytest.raises(
        PluginError,
        match=r"plugin p0 \(file: p0\): checkpoint_state\(\) "
        r"returned a value JSON cannot hold",
    ):
        run(write_experiment(tmp_path, epochs=2), registry_with(Bad()), tmp_path)


def test_hook_restore_state(tmp_path):
    """An early-stopping plugin with its own counter: interrupted and resumed, the run stops
    at the same epoch and ends bit for bit as the run that was never interrupted."""
    from rnnlab.training.run import resume_experiment, run_experiment
    from tests.support.tiny_runs import assert_same_outcome, tiny_experiment

    plugin = tmp_path / "early.py"
    plugin.write_text(EARLY_STOP)
    stop = tmp_path / "stop.py"
    stop.write_text(STOP_AT.format(at=10))
    exp, registry = tiny_experiment(tmp_path, "train.epochs=12", plugins=[plugin])
    summary, reference = run_experiment(exp, registry, out_root=tmp_path / "reference")
    assert (summary["status"], summary["epochs_run"]) == ("stopped", 10)

    sys_modules_plugin = [
        m
        for name, m in __import__("sys").modules.items()
        if name.startswith("rnnlab_file_plugin_early_")
    ]
    for module in sys_modules_plugin:  # a fresh process would start from a fresh counter
        module.counter.update(best=None, waited=0, restored=0)
    exp, registry = tiny_experiment(tmp_path, "train.epochs=12", plugins=[plugin, stop])
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, registry, out_root=tmp_path / "runs")
    [path] = (tmp_path / "runs").iterdir()
    assert RunDir(path).load_checkpoint().state.plugin_state["early"]["waited"] == 1
    for module in sys_modules_plugin:
        module.counter.update(best=None, waited=0, restored=0)
    exp, registry = tiny_experiment(tmp_path, "train.epochs=12", plugins=[plugin])
    summary, _ = resume_experiment(path, registry, experiment=exp)
    assert sys_modules_plugin[0].counter["restored"] == 1
    assert (summary["status"], summary["epochs_run"]) == ("stopped", 10)
    assert_same_outcome(path, reference.path)
