"""Property: whatever is done to a valid experiment file or command line, rnnlab answers with a
result (exit 0), a clear message (exit 2) or a divergence report (exit 3) — never a traceback."""

from __future__ import annotations

import copy
import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.cli import main
from rnnlab.display import figures as plots
from rnnlab.experiment.config import CORE_TABLES
from rnnlab.registry.manager import Registry
from rnnlab.training.run import run_experiment
from tests.support.tiny_runs import TINY, tiny_experiment

BASE = tomllib.loads(TINY)
KEYS = {table: [o.name for o in options] for table, options in CORE_TABLES.items()}
KEYS["task"] = ["name", *(o.name for o in Registry().task("sine").options)]
TABLES = [*KEYS, "trian", "extra"]


def deep_list(depth: int) -> list:
    value = [1]
    for _ in range(depth):
        value = [value]
    return value


VALUES = [
    0,
    -1,
    1,
    2,
    7,
    2**63 - 1,
    -(2**63),
    0.5,
    -0.5,
    1e-300,
    1e300,
    float("nan"),
    float("inf"),
    "",
    "x",
    "sine",
    "numpy",
    "lstm",
    "gru",
    "sgd",
    "norm",
    "cosine",
    True,
    False,
    [],
    [1],
    ["a.py"],
    {"a": 1},
    deep_list(70),  # past the nesting limit
    "n" * 100_000,  # a message quotes it shortened
]
RAW = ["", "x", "[1,", "1e999", "nan", "-0", "true", "'q'", "{}", "9" * 30]
RAW += ["[" * 600 + "]" * 600, "{a=" * 400 + "1" + "}" * 400]  # deeper than the parser recurses

tables = st.sampled_from(TABLES)
keys = st.sampled_from(
    sorted({k for ks in KEYS.values() for k in ks} | {"bogus", "hiden_size", "epoch"})
)
values = st.sampled_from(VALUES)
mutations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), tables, keys, values),
        st.tuples(st.just("del"), tables, keys),
        st.tuples(st.just("drop"), tables),
        st.tuples(st.just("replace"), tables, values),
    ),
    max_size=4,
)
text_edits = st.lists(
    st.tuples(
        st.floats(0, 1),
        st.sampled_from(
            [b"", b"[", b"]", b'"', b"=", b"\n", b"\x00", b"\xff", "é".encode(), b"[[x]]"]
        ),
        st.integers(0, 3),
    ),
    max_size=1,
)
word = st.sampled_from(RAW) | values.map(
    lambda v: tomli_w.dumps({"v": v})[4:].strip() if not isinstance(v, dict) else "{a=1}"
)
arg_groups = st.lists(
    st.one_of(
        st.tuples(tables, keys, word).map(lambda t: ("--set", f"{t[0]}.{t[1]}={t[2]}")),
        st.sampled_from(
            [
                ("--set", "garbage"),
                ("--set", "train.=1"),
                ("--json",),
                ("--plugin", "missing.py"),
                ("--bogus",),
                ("--out", "tiny.toml"),
                ("--resume", "."),
                ("--resume", "nope"),
            ]
        ),
    ),
    max_size=3,
)


@pytest.fixture(scope="module", autouse=True)
def no_figures():
    """Figures cost seconds per run and are not what is fuzzed here (a figure that cannot be
    drawn never fails a run); without them a case takes a fraction of a second."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "available", lambda: False)
        yield


def mutate(mutation_list) -> dict:
    doc = {t: dict(v) for t, v in BASE.items()}
    for m in mutation_list:
        kind, table = m[0], m[1]
        if kind == "set":
            section = doc.setdefault(table, {})
            if isinstance(section, dict):
                section[m[2]] = copy.deepcopy(m[3])
        elif kind == "del" and isinstance(doc.get(table), dict):
            doc[table].pop(m[2], None)
        elif kind == "drop":
            doc.pop(table, None)
        elif kind == "replace":
            doc[table] = copy.deepcopy(m[2])
    return doc


def render(doc: dict, edits) -> bytes:
    data = tomli_w.dumps(doc).encode()
    for where, insert, cut in edits:
        i = int(where * len(data))
        data = data[:i] + insert + data[i + cut :]
    return data


def invoke(folder: Path, args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    assert result.exit_code in (0, 2, 3), (args, result.output, result.exception)
    assert "Traceback" not in result.output, result.output
    assert result.exit_code != 2 or len(result.output) < 2000, result.output[:2000]
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutations, text_edits, arg_groups)
def test_mutated_experiment_files_and_command_lines_never_give_a_traceback(
    doc_changes, edits, groups
):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "tiny.toml"
        config.write_bytes(render(mutate(doc_changes), edits))
        extra = [a if a != "tiny.toml" else str(config) for g in groups for a in g]
        invoke(
            folder,
            ["run", str(config), "--out", str(folder / "runs"), *extra, "--set", "train.epochs=1"],
        )


STOP_AFTER_ONE_EPOCH = """
from rnnlab.hookspecs import hookimpl

@hookimpl
def on_epoch_end(epoch):
    raise KeyboardInterrupt
"""


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Path:
    """A tiny run stopped after its first epoch (its checkpoint says 1 of 4 epochs done)."""
    folder = tmp_path_factory.mktemp("interrupted")
    plugin = folder / "stop.py"
    plugin.write_text(STOP_AFTER_ONE_EPOCH)
    exp, registry = tiny_experiment(folder, plugins=[plugin])
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, registry, out_root=folder / "runs")
    (path,) = (folder / "runs").iterdir()
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(arg_groups)
def test_mutated_resume_command_lines_never_give_a_traceback(interrupted_run, groups):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(interrupted_run, run)
        extra = [a for g in groups for a in g if a not in ("--out", "tiny.toml", "--resume")]
        invoke(Path(tmp), ["resume", str(run), *extra])


# -- plugin code that exits ------------------------------------------------------------------
EXIT_PLACES = {
    "import": "{exit}\n",
    "on_run_start": "@hookimpl\ndef on_run_start(run):\n    {exit}\n",
    "on_epoch_end": "@hookimpl\ndef on_epoch_end(epoch):\n    {exit}\n",
    "on_run_end": "@hookimpl\ndef on_run_end(summary):\n    {exit}\n",
    "register_tasks": "@hookimpl\ndef register_tasks():\n    {exit}\n",
}
LOAD_TIME = ("import", "register_tasks")
EXITS = ["sys.exit(0)", "sys.exit(1)", "sys.exit()", "sys.exit('bye')", "raise SystemExit(3)"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(EXIT_PLACES)), st.sampled_from(EXITS), st.booleans())
def test_plugin_code_that_exits_never_ends_a_run_silently(place, exit_call, sweep):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plugin = folder / "quitter.py"
        body = EXIT_PLACES[place].format(exit=exit_call)
        plugin.write_text(f"import sys\nfrom rnnlab.hookspecs import hookimpl\n\n{body}")
        doc = {t: dict(v) for t, v in BASE.items()}
        doc["train"]["epochs"] = 1
        if sweep:
            doc["sweep"] = {"model.hidden_size": [3, 4]}
        config = folder / "tiny.toml"
        config.write_text(tomli_w.dumps(doc))
        command = ["sweep", "--workers", "1"] if sweep else ["run"]
        args = [*command, str(config), "--plugin", str(plugin), "--out", str(folder / "runs")]
        result = CliRunner().invoke(main, args, catch_exceptions=True)
        assert result.exit_code in (0, 1, 2), (args, result.output, result.exception)
        assert "Traceback" not in result.output, result.output
        failed = [
            p
            for p in (folder / "runs").rglob("summary.json")
            if '"failed"' in p.read_text() or '"running"' in p.read_text()
        ]
        if place in LOAD_TIME:
            assert f"{plugin}:" in " ".join(result.output.split())  # its file and line
        else:  # a load failure is a warning (the others keep working); the rest fail
            assert result.exit_code != 0, result.output  # the plugin failed: never exit 0
            assert "quitter" in result.output
        assert not failed or result.exit_code != 0, (failed, result.output)
        if sweep and result.exit_code == 1:
            assert "sweep saved in" in result.output  # the report came
