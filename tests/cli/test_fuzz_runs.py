"""Property: whatever is done to a run directory, a sweep file or a --set value, rnnlab answers
with a result, a clear message or a report; never a traceback, and never a changed byte in a
file the user already had (a command that reads changes nothing; one that is refused changes
nothing).

Cheap by design: in-process CLI calls, the tiny sine experiment, no figures (matplotlib is not
what is under test here and costs seconds per run)."""

from __future__ import annotations

import json
import os
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
from rnnlab.experiment.schema import CORE_TABLES
from rnnlab.store.lock import LOCK
from rnnlab.training.run import run_experiment
from tests.support.tiny_runs import TINY, tiny_experiment, write_tiny

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
READ_ONLY = ("runs", "show", "diff", "plot", "generate")


@pytest.fixture(scope="module", autouse=True)
def no_figures():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "available", lambda: False)
        yield


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file under ``folder`` with its bytes (None for a folder)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else p.is_dir())
        for p in sorted(folder.rglob("*"))
    }


def assert_kept(before: dict, after: dict, *, skip=()) -> None:
    changed = [
        name
        for name, data in before.items()
        if Path(name).name not in skip and after.get(name, b"<gone>") != data
    ]
    assert not changed, f"changed or removed: {changed}"


def invoke(args: list[str], codes=(0, 2, 3)):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    assert result.exit_code in codes, (args, result.output, result.exception)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


# -- damaged run directories -----------------------------------------------------------------
# Stops the first run only: a resume loads the plugin files its run recorded, this one too.
STOP_AFTER_TWO = """
from pathlib import Path
from rnnlab.hookspecs import hookimpl

@hookimpl
def on_epoch_end(epoch):
    done = Path(__file__).with_suffix(".done")
    if epoch == 2 and not done.exists():
        done.write_text("")
        raise KeyboardInterrupt
"""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """``interrupted/`` (checkpoint after 1 of 3 epochs) and ``finished/`` tiny runs."""
    folder = tmp_path_factory.mktemp("pristine")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "available", lambda: False)
        stop = folder / "stop.py"
        stop.write_text(STOP_AFTER_TWO)
        exp, registry = tiny_experiment(folder, "train.epochs=3", plugins=[stop])
        with pytest.raises(KeyboardInterrupt):
            run_experiment(exp, registry, out_root=folder / "runs", run_name="interrupted")
        exp, registry = tiny_experiment(folder, "train.epochs=2")
        run_experiment(exp, registry, out_root=folder / "runs", run_name="finished")
    return folder / "runs"


FILES = ["config.toml", "summary.json", "metrics.jsonl", "checkpoint.npz", "params.npz", LOCK]
GARBAGE = [
    b"",
    b"\x00" * 7,
    b"\xff\xfe",
    b"{",
    b"[1, 2",
    b"null",
    b"PK\x03\x04",
    "é".encode(),
    b'{"status": "running"}',
    b'{"pid": "x", "host": 3}',
    b"\n\n\n",
    b"a = [",
    b"[x]\n",
]
WRONG = [
    None,
    0,
    -1,
    2**70,
    {"pid": 2**70, "host": ""},
    {"pid": True},
    1.5,
    float("nan"),
    "",
    "running",
    "finished",
    [],
    [1],
    {},
    {"a": 1},
    {"status": 3},
    {"status": "running", "pid": -5},
    {"metrics": "x", "status": "finished"},
    {"metrics": {"test": {"loss": "x"}}},
    {"pid": 1, "host": "elsewhere", "started": 5},
    {"epoch": "3", "loss": None},
]
CONFIG_KEYS = [(t, o.name) for t, options in CORE_TABLES.items() for o in options]

damage = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0, 1)),
    st.tuples(st.just("garbage"), st.sampled_from(FILES), st.sampled_from(GARBAGE)),
    st.tuples(st.just("splice"), st.sampled_from(FILES), st.floats(0, 1), st.sampled_from(GARBAGE)),
    st.tuples(st.just("delete"), st.sampled_from(FILES)),
    st.tuples(
        st.just("json"),
        st.sampled_from(["summary.json", "metrics.jsonl", LOCK]),
        st.sampled_from(WRONG),
    ),
    st.tuples(
        st.just("toml"),
        st.sampled_from(CONFIG_KEYS),
        st.sampled_from([0, -1, 1.5, "", "x", "lstm", True, [], {"a": 1}, 10**6]),
    ),
    st.tuples(st.just("folder"), st.sampled_from(FILES)),
    st.tuples(st.just("fifo"), st.sampled_from(FILES)),  # blocks a reader that opens it plainly
)
commands = st.sampled_from(
    [
        ("runs", "{root}"),
        ("runs", "{root}", "--json"),
        ("runs", "{root}", "--sort", "test.loss"),
        ("show", "{run}"),
        ("diff", "{run}", "{other}"),
        ("plot", "{run}", "--out", "{tmp}/p.png"),
        ("generate", "{run}", "--prime", "a"),
        ("resume", "{run}"),
        ("resume", "{run}", "--set", "train.epochs=3"),
        ("run", "--resume", "{run}"),
    ]
)


def apply(run: Path, change) -> None:
    kind, name = change[0], change[1]
    path = run / name if isinstance(name, str) else run / "config.toml"
    if path.exists() and not path.is_file():
        return  # already made a folder or a FIFO (writing to a FIFO would wait for a reader)
    if kind in ("folder", "fifo"):
        path.unlink(missing_ok=True)
        path.mkdir() if kind == "folder" else os.mkfifo(path)
        return
    data = path.read_bytes() if path.is_file() else b""
    if kind == "truncate":
        path.write_bytes(data[: int(change[2] * len(data))])
    elif kind == "garbage":
        path.write_bytes(change[2])
    elif kind == "splice":
        i = int(change[2] * len(data))
        path.write_bytes(data[:i] + change[3] + data[i + len(change[3]) :])
    elif kind == "delete":
        path.unlink(missing_ok=True)
    elif kind == "json":
        text = json.dumps(change[2])
        if name == "metrics.jsonl":
            path.write_bytes(data + text.encode() + b"\n")
        else:
            path.write_text(text)
    elif kind == "toml":
        table, key = change[1]
        try:
            doc = tomllib.loads(data.decode())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            return
        doc.setdefault(table, {})[key] = change[2]
        path.write_text(tomli_w.dumps(doc))


@settings(FUZZ, max_examples=160)
@given(
    st.sampled_from(["interrupted", "finished"]), st.lists(damage, min_size=1, max_size=3), commands
)
def test_damaged_run_directories_never_give_a_traceback(pristine, which, changes, command):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        shutil.copytree(pristine, root)
        run = root / which
        for change in changes:
            apply(run, change)
        before = snapshot(root)
        other = root / ("finished" if which == "interrupted" else "interrupted")
        args = [a.format(root=root, run=run, other=other, tmp=tmp) for a in command]
        result = invoke(args)
        if command[0] in READ_ONLY or result.exit_code != 0:
            # a refused resume may have taken the lock: run.lock records its last holder
            assert_kept(before, snapshot(root), skip=(LOCK,) if command[0] != "runs" else ())


# -- sweep files -----------------------------------------------------------------------------
SWEEP_BASE = tomllib.loads(
    TINY.replace("[train]", "[train]\nepochs = 1")
    .replace("epochs = 4\n", "")
    .replace("points = 200", "points = 80")
)
GRID_KEYS = [
    "model.hidden_size",
    "train.learning_rate",
    "task.window",
    "model.cell",
    "train.optimizer",
    "model.bogus",
    "trian.epochs",
    "seeds",
    "variants",
    "seed",
    "experiment.seed",
    "task.name",
    "train.backend",
    "model",
    "",
]
SWEEP_VALUES = st.sampled_from(
    [0, -1, 1, 2, 3, 1.5, 1e300, float("nan"), "", "x", "gru", "sgd", True, {}, {"a": 1}]
)
sweep_tables = st.dictionaries(
    st.sampled_from(GRID_KEYS),
    st.one_of(
        SWEEP_VALUES,
        st.lists(SWEEP_VALUES, max_size=2),
        st.lists(st.dictionaries(st.sampled_from(GRID_KEYS), SWEEP_VALUES, max_size=2), max_size=2),
    ),
    max_size=3,
)


@settings(FUZZ, max_examples=70)
@given(
    sweep_tables,
    st.sampled_from(
        [
            [],
            ["--json"],
            ["--fail-fast"],
            ["--workers", "0"],
            ["--set", "train.epochs=2"],
            ["--set", "sweep.seeds=1"],
        ]
    ),
)
def test_mutated_sweep_files_never_give_a_traceback(table, extra):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.toml"
        doc = {**SWEEP_BASE, "sweep": table}
        try:
            path.write_text(tomli_w.dumps(doc))
        except (TypeError, ValueError):  # a value TOML cannot hold
            return
        before = snapshot(Path(tmp))
        invoke(
            ["sweep", path, "--workers", "1", "--out", Path(tmp) / "runs", *extra], codes=(0, 1, 2)
        )
        assert_kept(before, snapshot(Path(tmp)))


# -- --set values ----------------------------------------------------------------------------
SET_KEYS = [f"{t}.{k}" for t, k in CONFIG_KEYS] + [
    "task.points",
    "task.window",
    "task.noise",
    "task.bogus",
    "train",
    "sweep.seeds",
]
set_values = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
    st.sampled_from(
        [
            "1",
            "0",
            "-1",
            "1e9",
            "inf",
            "nan",
            "[1,2]",
            "{a=1}",
            "'x'",
            '"\\u0000"',
            "true",
            "2026-01-01",
            "0x10",
            "1_000",
            '"""',
            "[",
            "=",
            "a=b",
        ]
    ),
)


@settings(FUZZ, max_examples=90)
@given(st.lists(st.tuples(st.sampled_from(SET_KEYS), set_values), min_size=1, max_size=3))
def test_any_set_value_never_gives_a_traceback(tmp_path, sets):
    with tempfile.TemporaryDirectory() as tmp:
        config = write_tiny(Path(tmp))
        before = snapshot(Path(tmp))
        args = ["run", config, "--out", Path(tmp) / "runs"]
        for key, value in sets:
            args += ["--set", f"{key}={value}"]
        invoke([*args, "--set", "train.epochs=1", "--set", "task.points=80"])
        assert_kept(before, snapshot(Path(tmp)))


# -- special files where a data file belongs -------------------------------------------------
def make_special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path.with_name("other"))
        path.with_name("other").symlink_to(path)
    elif kind == "dangling":
        path.symlink_to(path.with_name("gone"))
    elif kind == "empty":
        path.write_bytes(b"")


@settings(FUZZ, max_examples=20)
@given(
    st.sampled_from(["fifo", "dev-zero", "folder", "loop", "dangling", "empty"]),
    st.sampled_from(
        [
            ("chargen", "path", "corpus.txt"),
            ("series", "path", "s.csv"),
            ("sequences", "path", "d.jsonl"),
        ]
    ),
)
def test_a_special_file_as_data_is_one_message(kind, task):
    name, key, file = task
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_special(folder / file, kind)
        config = folder / "exp.toml"
        config.write_text(
            f'[experiment]\nname = "x"\n[task]\nname = "{name}"\n{key} = "{file}"\n'
            "[train]\nepochs = 1\n"
        )
        result = invoke(["run", config, "--out", folder / "runs"], codes=(2,))
        assert f"[task.{key}]" in result.output or "[task]" in result.output, result.output
