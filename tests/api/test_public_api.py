"""Plugin authors have one public module, rnnlab.plugin: rnnlab's own plugins, the example
packages and the plugin tutorial import rnnlab from it only (tests also from rnnlab.testing)."""

from __future__ import annotations

import ast
import re

import pytest

import rnnlab.plugin
from rnnlab.nn.model import param_name
from tests.support.paths import ROOT

PLUGIN_CODE = sorted(
    path
    for path in [*ROOT.glob("plugins/rnnlab_*/**/*.py"), *ROOT.glob("examples/*/src/**/*.py")]
    if "tests" not in path.relative_to(ROOT).parts  # a built-in plugin's own tests sit beside it
)
PLUGIN_TESTS = sorted(ROOT.glob("examples/*/tests/*.py"))


def rnnlab_imports(source: str) -> set[str]:
    """The rnnlab modules a piece of code imports (``rnnlab.plugin``, ``rnnlab.testing``...)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n == "rnnlab" or n.startswith("rnnlab.")}
    return out


@pytest.mark.parametrize("path", PLUGIN_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_public_module(path):
    assert rnnlab_imports(path.read_text()) <= {"rnnlab.plugin"}


@pytest.mark.parametrize("path", PLUGIN_TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_tests_import_the_public_module_and_the_checks(path):
    assert rnnlab_imports(path.read_text()) <= {"rnnlab.plugin", "rnnlab.testing"}


@pytest.mark.parametrize("doc", ["writing-plugins.md", "hooks.md", "sweeps.md"])
def test_docs_import_only_the_public_module(doc):
    text = (ROOT / "docs" / doc).read_text()
    for block in re.findall(r"```python[^\n]*\n(.*?)```", text, flags=re.S):
        assert rnnlab_imports(block) <= {"rnnlab.plugin", "rnnlab.testing"}, block[:200]


def test_every_public_name_is_there():
    assert sorted(rnnlab.plugin.__all__) == sorted(set(rnnlab.plugin.__all__))
    for name in rnnlab.plugin.__all__:
        assert getattr(rnnlab.plugin, name) is not None


def test_param_name_builds_pytorch_names():
    assert param_name("weight_ih", 0) == "rnn.weight_ih_l0"
    assert param_name("bias_hh", 2) == "rnn.bias_hh_l2"
    assert param_name("weight") == "head.weight"
    assert param_name("nu_log", 1, reverse=True) == "rnn.nu_log_l1_reverse"  # any cell's own
    with pytest.raises(ValueError, match="identifier"):
        param_name("weight xx", 0)
    with pytest.raises(ValueError, match="weight, bias"):
        param_name("weight_ih")
