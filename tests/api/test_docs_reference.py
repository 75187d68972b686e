"""The generated reference names everything users can set, type or import.

docs/gen/reference.py writes the reference pages at build time; these tests render them without
building the site and compare them with the code, enumerated independently: every key of the
experiment file (the core's tables, every installed task's options, every plugin's tables), every
command and option of the command line, every public Python name. The run-directory page is
written by hand, so a real run checks it names every file a run leaves.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re

import click
import pytest

import rnnlab
import rnnlab.plugin
import rnnlab.testing
from rnnlab.cli import main
from rnnlab.experiment.schema import CORE_TABLES
from rnnlab.registry.manager import Registry
from tests.support.paths import ROOT
from tests.support.tiny_runs import write_tiny

GEN = ROOT / "docs" / "gen" / "reference.py"
KEY = re.compile(r'<span id="([^"]+)">`([^`]+)`</span> \| ([^|]*) \| ([^|]*) \|')


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("docs_reference", GEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def declared_keys() -> dict[str, object]:
    """``{"train.epochs": Option, "task.sine.window": Option, "tracking.mlflow": Option, ...}``
    from the declarations the validator reads."""
    registry = Registry()
    out = {}
    for table, options in CORE_TABLES.items():
        out |= {f"{table}.{o.name}": o for o in options}
    for task in registry.tasks.values():
        out |= {f"task.{task.name}.{o.name}": o for o in task.options}
    for table in registry.tables.values():
        out |= {f"{table.name}.{o.name}": o for o in table.options}
    return out


def test_experiment_page_has_every_key_with_its_default(reference):
    rows = {m[0]: m for m in KEY.findall(reference.experiment_page())}
    declared = declared_keys()
    missing = sorted(set(declared) - set(rows))
    assert not missing, f"keys missing from the generated experiment-file page: {missing}"
    assert "task.name" in rows
    for key, option in declared.items():
        _, name, _, default = rows[key]
        assert name == option.name
        assert default.strip() == f"`{reference.toml_value(option.default)}`", key


def test_experiment_page_states_ranges_and_choices(reference):
    rows = {m[0]: m for m in KEY.findall(reference.experiment_page())}
    page = reference.experiment_page()
    assert "| `0.0` | ≥ 0, ≤ 1 |" in page.split('id="model.dropout"')[1].split("\n")[0]
    assert '`"tanh"`, `"relu"`' in page.split('id="model.nonlinearity"')[1].split("\n")[0]
    assert rows["train.epochs"][2].strip() == "integer"


def cli_sections(page: str) -> dict[str, str]:
    parts = re.split(r"^## `([^`]+)`$", page, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def every_command(group: click.Group, path: str):
    yield path, group
    ctx = click.Context(group, info_name=path)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from every_command(command, f"{path} {name}")
        elif not command.hidden:
            yield f"{path} {name}", command


def test_cli_page_has_every_command_and_option(reference):
    sections = cli_sections(reference.cli_page())
    for path, command in every_command(main, "rnnlab"):
        assert path in sections, f"`{path}` is missing from the command-line reference"
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            if isinstance(param, click.Argument):
                names = [param.human_readable_name]
            else:
                names = [*param.opts, *param.secondary_opts]
            for name in names:
                assert f"`{name}`" in sections[path], f"{path} {name} is not documented"


def test_cli_page_carries_help_and_defaults(reference):
    run = cli_sections(reference.cli_page())["rnnlab generate"]
    assert "Print PRIME and its continuation" in run
    assert re.search(r"\| `--length` \| integer, `x>=0` \| `200` \| Characters to generate", run)


def public_testing_functions() -> list[str]:
    return [
        name
        for name, obj in vars(rnnlab.testing).items()
        if inspect.isfunction(obj) and obj.__module__ == "rnnlab.testing" and name[0] != "_"
    ]


@pytest.mark.parametrize(
    ("page", "names"),
    [
        ("python_api_page", [f"rnnlab.{n}" for n in rnnlab.__all__ if n != "__version__"]),
        ("plugin_api_page", [f"rnnlab.plugin.{n}" for n in rnnlab.plugin.__all__]),
        ("testing_page", [f"rnnlab.testing.{n}" for n in public_testing_functions()]),
    ],
)
def test_api_pages_document_every_public_name(reference, page, names):
    text = getattr(reference, page)()
    headings = re.findall(r"^## `([^`]+)`$", text, flags=re.M)
    blocks = re.findall(r"^::: (\S+)$", text, flags=re.M)
    assert sorted(headings) == sorted(names)
    for name, path in zip(headings, blocks, strict=True):
        assert resolve(path) is resolve(name), f"{name} is documented from {path}"


def resolve(dotted: str):
    owner, _, member = dotted.rpartition(".")
    return getattr(importlib.import_module(owner), member)


def test_api_reference_keeps_the_version(reference):
    assert "`rnnlab.__version__`" in reference.python_api_page()
    assert "__version__" in rnnlab.__all__


@pytest.mark.slow
def test_run_directory_page_names_every_file_a_run_writes(tmp_path):
    pytest.importorskip("matplotlib")  # the figures are part of what a run leaves
    page = (ROOT / "docs" / "reference" / "run-directory.md").read_text()
    documented = set(re.findall(r"`([^`]+)`", page))
    run = rnnlab.run(write_tiny(tmp_path), out=tmp_path / "runs", quiet=True)
    written = sorted(p.name for p in run.dir.iterdir())
    assert "params.npz" in written and "summary.json" in written
    missing = [name for name in written if name not in documented]
    assert not missing, f"docs/reference/run-directory.md does not name {missing}"
