"""The plugin registry: built-ins through entry points, plugin files, conflicts, failures."""

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import PluginError
from rnnlab.registry.manager import Registry

TASK_PLUGIN = """
from rnnlab.hookspecs import hookimpl
from rnnlab.specs import TaskSpec
from rnnlab_sine.task import OPTIONS, SineTask

__version__ = "1.2.3"

@hookimpl
def register_tasks():
    return [TaskSpec("{name}", SineTask, OPTIONS, "a copy of sine")]
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtins_enter_through_entry_points():
    registry = Registry()
    assert {"numpy", "sine"} <= set(registry.plugins)
    assert registry.plugins["numpy"].source == "built-in"
    assert "numpy" in registry.backends and "sine" in registry.tasks
    assert registry.plugins["sine"].tasks == ["sine"]
    assert "register_tasks" in registry.plugins["sine"].hooks


def test_a_single_file_is_a_plugin(tmp_path):
    path = write(tmp_path, "wave.py", TASK_PLUGIN.format(name="wave"))
    registry = Registry([path])
    info = registry.plugins["wave"]
    assert (info.source, info.version, info.status) == ("file", "1.2.3", "ok")
    assert registry.task("wave").description == "a copy of sine"


def test_two_providers_of_one_name_is_an_error_naming_both(tmp_path):
    path = write(tmp_path, "impostor.py", TASK_PLUGIN.format(name="sine"))
    registry = Registry([path])
    with pytest.raises(PluginError) as info:
        registry.task("sine")
    message = str(info.value)
    assert "task 'sine' is provided by more than one plugin" in message
    assert "sine (built-in: rnnlab)" in message and f"impostor (file: {path})" in message
    with pytest.raises(PluginError, match="more than one plugin"):
        Registry([path], strict=True)


def test_a_broken_plugin_is_reported_and_the_others_still_work(tmp_path):
    path = write(tmp_path, "broken.py", "import not_a_module_anywhere\n")
    registry = Registry([path])
    assert registry.plugins["broken"].status.startswith("failed: ModuleNotFoundError")
    assert "sine" in registry.tasks and "numpy" in registry.backends
    with pytest.raises(PluginError, match="plugin broken .file: .*failed to load"):
        Registry([path], strict=True)


def test_a_hook_that_matches_no_hookspec_is_a_load_failure(tmp_path):
    text = (
        "from rnnlab.hookspecs import hookimpl\n\n@hookimpl\ndef register_taks():\n    return []\n"
    )
    registry = Registry([write(tmp_path, "typo.py", text)])
    assert registry.plugins["typo"].status.startswith("failed")
    assert "register_taks" in registry.plugins["typo"].status


def test_disabled_plugins_are_skipped_but_numpy_is_essential():
    registry = Registry(disabled={"sine", "numpy"})
    assert registry.plugins["sine"].status == "disabled" and "sine" not in registry.tasks
    assert "numpy" in registry.backends


def test_plugins_command_lists_sources_and_failures(tmp_path):
    broken = write(tmp_path, "broken.py", "raise RuntimeError('boom')\n")
    result = CliRunner().invoke(main, ["plugins", "--plugin", str(broken)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "built-in" in result.output and "sine" in result.output
    assert "failed: RuntimeError: boom" in result.output
