"""Hostile experiments: values nested hundreds of levels deep and values megabytes long give one
short ConfigError naming the file (or ``--set``), the key and the limit, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import rnnlab
from rnnlab.cli import main
from rnnlab.errors import SHOWN, ConfigError, shown
from rnnlab.experiment.config import MAX_DEPTH, read_toml, read_with_overrides
from tests.support.tiny_runs import TINY, write_tiny

LIMIT = f"may nest at most {MAX_DEPTH} levels deep"


def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def inline_tables(depth: int) -> str:
    return "{a = " * depth + "1" + "}" * depth


def nested_dict(depth: int) -> dict:
    out = inner = {}
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return out


def error_of(call, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(
    "value,line",
    [
        (arrays(500), " (from line 2)"),  # deeper than the TOML parser can recurse
        (inline_tables(500), " (from line 2)"),
        (arrays(MAX_DEPTH + 1), ""),  # parsed, then refused by the limit
        (arrays(3) + "\nsame = " + inline_tables(MAX_DEPTH), ""),
    ],
    ids=["arrays 500", "inline tables 500", "arrays past the limit", "inline past the limit"],
)
def test_deep_values_in_a_file(tmp_path, value, line):
    path = tmp_path / "deep.toml"
    path.write_text(f'[task]\nx = {value}\nname = "sine"\n')
    exc = error_of(read_toml, path)
    where = "[task.same]" if "same" in value else "[task.x]"
    assert str(exc) == f"{path}: {where}: nested too deeply{line}: arrays and tables {LIMIT}"


def test_nesting_up_to_the_limit_is_read(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(f'[task]\nx = {arrays(MAX_DEPTH - 1)}\ny = "[[[["\n# [[[[\n')
    assert read_toml(path)["task"]["y"] == "[[[["


def test_deep_dotted_keys_and_a_deep_header(tmp_path):
    path = tmp_path / "dotted.toml"
    path.write_text("[task]\n" + ".".join(["a"] * 500) + " = 1\n")
    assert str(error_of(read_toml, path)).startswith(f"{path}: [task.a]: nested too deeply")
    path.write_text("[" + ".".join(["b"] * 500) + "]\nx = 1\n")
    assert str(error_of(read_toml, path)).startswith(f"{path}: [b.b]: nested too deeply")


@pytest.mark.parametrize("depth", [500, MAX_DEPTH])
def test_deep_values_in_a_set(tmp_path, depth):
    item = f"task.x={arrays(depth)}"
    exc = error_of(read_with_overrides, write_tiny(tmp_path), [item])
    assert exc.source.startswith("--set task.x=[[[") and len(exc.source) < 3 * SHOWN
    assert (exc.table, exc.key) == ("task", "x") and LIMIT in exc.detail


def test_deep_dicts_through_the_python_api(tmp_path):
    deep = {"task": {"name": "sine", "x": nested_dict(2000)}}
    exc = error_of(rnnlab.run, deep, out=tmp_path, quiet=True)
    assert str(exc) == f"<experiment>: [task.x]: nested too deeply: arrays and tables {LIMIT}"
    looped = {"task": {"name": "sine"}}
    looped["task"]["self"] = looped  # a dict that contains itself
    exc = error_of(rnnlab.run, looped, out=tmp_path, quiet=True)
    assert (exc.table, exc.key) == ("task", "self")
    assert not (tmp_path / "runs").exists() and not list(tmp_path.iterdir())


def test_the_cli_prints_one_line_and_exits_2(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text(TINY.replace("[task]", f"[task]\nx = {arrays(800)}"))
    for args in (
        ["run", str(path)],
        ["run", str(write_tiny(tmp_path)), "--set", f"model.x={arrays(900)}"],
    ):
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "runs")])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and LIMIT in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_shown_keeps_short_values_and_shortens_long_ones():
    assert shown("adma") == "'adma'" and shown([1, 2]) == "[1, 2]"
    assert shown("x" * 10**6) == "'" + "x" * (SHOWN - 4) + "... (1000000 characters)"
    assert shown(list(range(10**4))).endswith("... (10000 items)")


@pytest.mark.parametrize(
    "change,words",
    [
        (
            ('name = "tiny"', 'name = "' + "n" * 5_000_000 + '"'),
            ("[experiment.name]", "at most 200"),
        ),
        (("window = 5", 'window = "' + "w" * 5_000_000 + '"'), ("[task.window]", "an integer")),
        (("window = 5", "window = 5\n" + "k" * 5_000_000 + " = 1"), ("[task.'kkk", "unknown key")),
    ],
    ids=["long name", "long value", "long key"],
)
def test_long_values_are_quoted_shortened(tmp_path, change, words):
    path = write_tiny(tmp_path, TINY.replace(*change))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output[:500]
    assert len(result.output) < 600 and "5000000 characters" in result.output, result.output
    for w in words:
        assert w in result.output, (w, result.output)


def test_a_long_set_is_named_shortened(tmp_path):
    item = "experiment.name=" + "s" * 10**6
    result = CliRunner().invoke(
        main, ["run", str(write_tiny(tmp_path)), "--set", item, "--out", str(tmp_path / "runs")]
    )
    assert result.exit_code == 2 and len(result.output) < 600, result.output[:500]
    assert "--set experiment.name=sss" in result.output and "at most 200" in result.output
