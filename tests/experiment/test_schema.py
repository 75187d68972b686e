"""The typed schema of experiment files: its declarations, the JSON Schema generated from them
(`rnnlab schema`), and what the schema and the validator agree on."""

from __future__ import annotations

import ast
import copy
import json
import pickle
import tomllib
from dataclasses import fields

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.experiment import schema
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.experiment.json_schema import experiment_schema
from rnnlab.registry.manager import Registry
from tests.support.paths import EXPERIMENTS, ROOT
from tests.support.tiny_runs import TINY

jsonschema = pytest.importorskip("jsonschema")

SHIPPED = sorted(EXPERIMENTS.glob("*.toml"))


@pytest.fixture(scope="module")
def registry():
    return Registry()


@pytest.fixture(scope="module")
def validator(registry):
    generated = experiment_schema(registry)
    jsonschema.Draft202012Validator.check_schema(generated)
    return jsonschema.Draft202012Validator(generated)


def schema_errors(validator, raw) -> list[str]:
    return [e.message for e in validator.iter_errors(raw)]


# -- the declarations ------------------------------------------------------------------------
def test_every_core_field_is_declared_with_a_meaning():
    for table, cls in schema.CORE_CLASSES.items():
        options = schema.CORE_TABLES[table]
        assert [o.name for o in options] == [f.name for f in fields(cls)]
        for o in options:
            assert o.help, (table, o.name)
            assert isinstance(o.default, o.type), (table, o.name)
    assert schema.CORE_TABLES["experiment"][2].item is str  # plugins: list[str]


def test_config_objects_are_typed_frozen_and_pickle():
    model = schema.ModelConfig(hidden_size=7)
    assert model.hidden_size == 7 and schema.ModelConfig.__module__ == "rnnlab.experiment.schema"
    with pytest.raises(AttributeError):
        model.hidden_size = 8  # frozen
    a, b = schema.ExperimentConfig(), schema.ExperimentConfig()
    assert a.plugins == [] and a.plugins is not b.plugins  # a list default is not shared
    exp = build_experiment(tomllib.loads(TINY), Registry())
    assert pickle.loads(pickle.dumps(exp)) == exp  # sweep workers pickle experiments


def imports_of(path) -> set[str]:
    """The modules a file imports, relative ones as written (``..specs``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_schema_is_a_leaf_that_the_model_and_registry_read():
    rnnlab_imports = {m for m in imports_of(ROOT / "rnnlab/experiment/schema.py") if "." in m}
    assert rnnlab_imports <= {"..specs", "..errors"}, rnnlab_imports
    for path in ("nn/model.py", "nn/optim.py", "registry/manager.py"):
        found = imports_of(ROOT / "rnnlab" / path)
        assert "..experiment.config" not in found, path
        assert "..experiment.schema" in found, path


# -- the JSON Schema -------------------------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_experiment_validates(validator, path):
    assert schema_errors(validator, read_toml(path)) == []


def test_the_shipped_files_include_sweeps(validator):
    sweeps = [p for p in SHIPPED if "sweep" in read_toml(p)]
    assert len(sweeps) >= 2  # a grid and explicit variants
    raw = read_toml(EXPERIMENTS / "sine_sweep.toml")
    raw["sweep"]["model.hiden_size"] = [1, 2]
    assert schema_errors(validator, raw)
    raw = read_toml(EXPERIMENTS / "sine_sweep.toml")
    raw["sweep"]["model.hidden_size"] = [16, 0]
    assert schema_errors(validator, raw)
    raw["sweep"]["model.hidden_size"] = [16]
    raw["sweep"]["seeds"] = [0, 0]
    assert schema_errors(validator, raw)


@pytest.mark.parametrize(
    "change",
    [
        lambda raw: raw["model"].update(hiden_size=8),  # a typo in a core table
        lambda raw: raw.update(trian={"epochs": 1}),  # an unknown table
        lambda raw: raw["task"].update(pairs=2),  # an option of another task (dyck's)
        lambda raw: raw["train"].update(epochs="ten"),
        lambda raw: raw["task"].update(name="sien"),
        lambda raw: raw.pop("task"),
    ],
    ids=["unknown key", "unknown table", "other task's option", "type", "task name", "no task"],
)
def test_unknown_keys_and_wrong_values_are_rejected(validator, change):
    raw = read_toml(EXPERIMENTS / "sine.toml")
    assert schema_errors(validator, raw) == []
    change(raw)
    assert schema_errors(validator, raw)


VALUES = [
    # (table, key, value, valid?): hand-picked edges, checked by the schema and the validator
    ("model", "hidden_size", 0, False),
    ("model", "hidden_size", 1, True),
    ("model", "dropout", 1.0, True),
    ("model", "dropout", 1.5, False),
    ("model", "nonlinearity", "sigmoid", False),
    ("model", "dtype", "float32", True),
    ("model", "cell", "gru", True),
    ("model", "cell", "lsmt", False),  # the installed cells
    ("train", "backend", "nunpy", False),  # the installed backends
    ("train", "beta1", 1.0, False),
    ("train", "beta1", 0.0, True),
    ("train", "learning_rate", 1, True),  # an integer is a number
    ("train", "learning_rate", 0.0, False),
    ("train", "optimizer", "adma", False),
    ("train", "keep_best", "yes", False),
    ("train", "epochs", True, False),  # a boolean is not an integer
    ("train", "checkpoint_every", 0, True),
    ("experiment", "seed", -1, False),
    ("experiment", "name", "x" * 200, True),
    ("experiment", "name", "x" * 201, False),
    ("experiment", "plugins", [1], False),
    ("compare", "repeats", 0, False),
    ("diagnostics", "sample_size", 0, False),
    ("task", "window", 0, False),  # sine's own option
    ("task", "window", 3, True),
    ("task", "noise", "loud", False),
]


@pytest.mark.parametrize("table,key,value,valid", VALUES)
def test_schema_and_validator_agree(validator, registry, table, key, value, valid):
    raw = read_toml(EXPERIMENTS / "sine.toml")
    raw.setdefault(table, {})[key] = copy.deepcopy(value)
    assert (schema_errors(validator, raw) == []) is valid
    if valid:
        build_experiment(raw, registry)
    else:
        with pytest.raises(ConfigError, match=rf"\[{table}\.{key}\]"):
            build_experiment(raw, registry)


PLUGIN = """
from rnnlab.plugin import Option, TableSpec, TaskSpec, hookimpl
from rnnlab_sine import SineTask


@hookimpl
def register_tasks():
    return [TaskSpec("wave", SineTask, (Option("amplitude", float, 1.0, "peak", gt=0),), "w")]


@hookimpl
def register_tables():
    return [TableSpec("notes", (Option("text", str, "", "a note"),), "free text")]
"""


def test_rnnlab_schema_prints_the_schema_with_plugin_tables_and_tasks(tmp_path, registry):
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == experiment_schema(registry)
    assert len(result.output.splitlines()) > 100  # indented by default
    (tmp_path / "wave.py").write_text(PLUGIN)
    result = CliRunner().invoke(
        main, ["schema", "--json-indent", "0", "--plugin", str(tmp_path / "wave.py")]
    )
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 1
    generated = json.loads(result.output)
    assert generated["properties"]["notes"]["properties"]["text"]["description"] == "a note"
    check = jsonschema.Draft202012Validator(generated)
    raw = {"task": {"name": "wave", "amplitude": 2.0}, "notes": {"text": "hi"}}
    assert schema_errors(check, raw) == []
    raw["task"]["amplitude"] = 0
    assert schema_errors(check, raw)
    raw["task"] = {"name": "wave", "window": 3}  # sine's option, not wave's
    assert schema_errors(check, raw)


def test_descriptions_defaults_and_bounds_come_from_the_declarations(validator):
    train = validator.schema["properties"]["train"]
    assert train["additionalProperties"] is False
    lr = train["properties"]["learning_rate"]
    assert lr == {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "step size",
        "default": 0.01,
    }
    assert train["properties"]["optimizer"]["enum"] == list(schema.OPTIMIZERS)
    plugins = validator.schema["properties"]["experiment"]["properties"]["plugins"]
    assert plugins["items"] == {"type": "string"} and plugins["default"] == []
