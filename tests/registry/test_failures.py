"""Every way a plugin can go wrong is one message naming the plugin and its source."""

import json
import sys
import textwrap

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.errors import ConfigError, PluginError
from rnnlab.experiment.config import build_experiment, read_toml
from rnnlab.hookspecs import hookimpl
from rnnlab.registry.manager import Registry
from rnnlab.specs import TaskSpec
from rnnlab.store.rundir import RunDir
from tests.support.pluginkit import registry_with, run, write_experiment

TASK_FILE = """\
from rnnlab.hookspecs import hookimpl
from rnnlab.specs import TaskSpec
from rnnlab_sine.task import OPTIONS, SineTask

@hookimpl
def register_tasks():
    return [TaskSpec({name!r}, SineTask, OPTIONS)]
"""


def plugin_file(folder, name, text):
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def cli(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env or {})


# -- a plugin that fails to import -----------------------------------------------------------
def test_import_error_names_the_file_and_the_rest_keep_working(tmp_path):
    path = plugin_file(tmp_path, "broken", "import no_such_module_xyz\n")
    registry = Registry([path], strict=False)
    [info] = registry.failures()
    assert info.label == f"broken (file: {path})"
    assert info.status == (
        f"failed: ModuleNotFoundError: No module named 'no_such_module_xyz' (at {path}:1)"
    )
    assert "sine" in registry.tasks and "numpy" in registry.backends


def test_run_warns_once_without_a_traceback_and_trains(tmp_path):
    path = plugin_file(tmp_path, "broken", "raise RuntimeError('boom')\n")
    experiment = write_experiment(tmp_path, epochs=1)
    result = cli("run", str(experiment), "--plugin", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert text.count(f"warning: plugin broken (file: {path}) failed: RuntimeError: boom") == 1
    assert "Traceback" not in result.output


def test_plugins_json_shows_the_failure(tmp_path):
    path = plugin_file(tmp_path, "broken", "raise RuntimeError('boom')\n")
    result = cli("plugins", "--json", "--plugin", str(path))
    assert result.exit_code == 0
    [info] = [p for p in json.loads(result.output) if p["name"] == "broken"]
    assert (info["source"], info["origin"], info["status"]) == (
        "file",
        str(path),
        f"failed: RuntimeError: boom (at {path}:1)",
    )


def test_a_plugin_file_that_registers_nothing_is_a_warning_naming_it(tmp_path):
    forgotten = plugin_file(
        tmp_path,
        "forgotten",
        """\
        from rnnlab.specs import TaskSpec
        from rnnlab_sine.task import OPTIONS, SineTask

        def register_tasks():  # the @hookimpl decorator forgotten
            return [TaskSpec("sine2", SineTask, OPTIONS)]
        """,
    )
    empty = plugin_file(tmp_path, "empty", "HELPER = 1\n")
    registry = Registry([forgotten, empty], strict=False)
    statuses = {info.name: info.status for info in registry.failures()}
    assert statuses == {
        "forgotten": "failed: registers nothing: register_tasks() lacks the @hookimpl "
        "decorator (from rnnlab.plugin import hookimpl)",
        "empty": "failed: registers nothing: no function is decorated with @hookimpl (from "
        "rnnlab.plugin import hookimpl), so rnnlab finds no task, backend or hook in it",
    }
    experiment = write_experiment(tmp_path, epochs=1)
    out = str(tmp_path / "runs")
    result = cli("run", str(experiment), "--plugin", str(forgotten), "--out", out)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"warning: plugin forgotten (file: {forgotten}) failed: registers nothing" in text


def test_missing_plugin_file_is_named(tmp_path):
    registry = Registry([tmp_path / "nope.py"], strict=False)
    assert registry.failures()[0].status == f"failed: no such file: {tmp_path / 'nope.py'}"


# -- strict mode and disabling ---------------------------------------------------------------
def test_strict_env_makes_a_broken_plugin_fatal(tmp_path, monkeypatch):
    path = plugin_file(tmp_path, "broken", "raise RuntimeError('boom')\n")
    monkeypatch.setenv("RNNLAB_STRICT_PLUGINS", "1")
    with pytest.raises(
        PluginError,
        match=r"plugin broken \(file: .*broken.py\) failed to load: "
        r"RuntimeError: boom",
    ):
        Registry([path])


def test_strict_env_on_the_command_line(tmp_path):
    path = plugin_file(tmp_path, "broken", "raise RuntimeError('boom')\n")
    experiment = write_experiment(tmp_path)
    result = cli(
        "run",
        str(experiment),
        "--plugin",
        str(path),
        "--out",
        str(tmp_path / "runs"),
        env={"RNNLAB_STRICT_PLUGINS": "1"},
    )
    assert result.exit_code == 2
    assert "error: plugin broken (file:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_disable_env_skips_named_plugins(monkeypatch):
    monkeypatch.setenv("RNNLAB_DISABLE_PLUGINS", "sine, nothing")
    registry = Registry()
    assert registry.plugins["sine"].status == "disabled"
    assert "sine" not in registry.tasks


def test_disabled_task_is_a_config_error_naming_the_valid_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_DISABLE_PLUGINS", "sine")
    with pytest.raises(ConfigError, match=r"\[task.name\]: unknown task 'sine'"):
        build_experiment(
            read_toml(write_experiment(tmp_path)), Registry(), source=tmp_path / "small.toml"
        )


def test_numpy_backend_cannot_be_disabled(monkeypatch):
    monkeypatch.setenv("RNNLAB_DISABLE_PLUGINS", "numpy")
    registry = Registry()
    assert registry.plugins["numpy"].status == "ok" and "numpy" in registry.backends


def test_a_disabled_broken_plugin_is_not_imported(tmp_path):
    path = plugin_file(tmp_path, "broken", "raise RuntimeError('boom')\n")
    registry = Registry([path], disabled={"broken"}, strict=True)
    assert registry.plugins["broken"].status == "disabled"


# -- hook implementations that match no hookspec ---------------------------------------------
def test_misspelt_hook_is_named_with_a_suggestion(tmp_path):
    path = plugin_file(
        tmp_path,
        "typo",
        """\
        from rnnlab.hookspecs import hookimpl

        @hookimpl
        def on_epoch_ends(run, epoch):
            pass
        """,
    )
    registry = Registry([path], strict=False)
    [info] = registry.failures()
    assert info.label == f"typo (file: {path})"
    assert info.status.startswith(
        "failed: hook implementation 'on_epoch_ends' matches no hook; did you mean 'on_epoch_end'?"
    )
    assert registry.pm.get_plugin("typo") is None  # unregistered: its hooks never run


def test_hook_with_an_unknown_argument_is_named(tmp_path):
    path = plugin_file(
        tmp_path,
        "badargs",
        """\
        from rnnlab.hookspecs import hookimpl

        @hookimpl
        def on_epoch_end(run, epoch, loss):
            pass
        """,
    )
    registry = Registry([path], strict=False)
    [info] = registry.failures()
    assert info.status.startswith("failed: PluginValidationError: ")
    assert "on_epoch_end(run, epoch, loss)" in info.status and "'loss'" in info.status
    assert "\n" not in info.status


def test_a_hook_may_take_fewer_arguments():
    class Quiet:
        @hookimpl
        def on_epoch_end(self, epoch):
            return None

    registry = registry_with(Quiet())
    assert registry.plugins["p0"].status == "ok"
    assert registry.plugins["p0"].hooks == ["on_epoch_end"]


# -- two plugins providing one name ----------------------------------------------------------
def test_two_plugins_one_task_names_both(tmp_path):
    a = plugin_file(tmp_path, "first", TASK_FILE.format(name="wave"))
    b = plugin_file(tmp_path, "second", TASK_FILE.format(name="wave"))
    registry = Registry([a, b], strict=False)
    with pytest.raises(
        PluginError,
        match=rf"task 'wave' is provided by more than one plugin: "
        rf"first \(file: {a}\) and second \(file: {b}\)",
    ):
        registry.task("wave")


def test_two_plugins_one_name_is_fatal_when_strict(tmp_path):
    a = plugin_file(tmp_path, "first", TASK_FILE.format(name="sine"))
    with pytest.raises(
        PluginError,
        match=r"task 'sine' is provided by more than one plugin: "
        r"sine \(built-in: rnnlab\) and first \(file: ",
    ):
        Registry([a], strict=True)


def test_two_plugins_one_plugin_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = plugin_file(tmp_path / "a", "same", TASK_FILE.format(name="one"))
    b = plugin_file(tmp_path / "b", "same", TASK_FILE.format(name="two"))
    registry = Registry([a, b], strict=False)
    [info] = registry.failures()
    assert info.status == f"failed: plugin name 'same' is already taken by same (file: {a})"
    assert "one" in registry.tasks and "two" not in registry.tasks


# -- options that disagree with the experiment file ------------------------------------------
def test_unknown_task_option_suggests_the_declared_one(tmp_path):
    path = write_experiment(tmp_path, text="[task]\nname = 'sine'\nwindw = 4\n")
    with pytest.raises(ConfigError) as err:
        build_experiment(read_toml(path), Registry(), source=path)
    assert str(err.value).startswith(f"{path}: [task.windw]: unknown key; did you mean 'window'?")
    assert "(valid: forecast_steps, name, noise, points" in str(err.value)


def test_wrong_option_type_names_the_key(tmp_path):
    path = write_experiment(tmp_path, text="[task]\nname = 'sine'\nwindow = 'ten'\n")
    with pytest.raises(ConfigError, match=r"\[task.window\]: must be an integer, got 'ten'"):
        build_experiment(read_toml(path), Registry(), source=path)


# -- a hook that raises during a run ---------------------------------------------------------
class Crash:
    def __init__(self, at):
        self.at = at

    @hookimpl
    def on_epoch_end(self, epoch):
        if epoch == self.at:
            raise ValueError("tracker offline")


def test_a_raising_hook_stops_the_run_and_keeps_its_results(tmp_path):
    registry = registry_with(Crash(at=2))
    with pytest.raises(PluginError) as err:
        run(write_experiment(tmp_path, epochs=5), registry, tmp_path / "runs")
    line = Crash.on_epoch_end.__code__.co_firstlineno + 3
    assert str(err.value) == (
        f"plugin p0 (file: p0) raised in hook on_epoch_end() (at {__file__}:{line}): "
        "ValueError: tracker offline"
    )
    [path] = (tmp_path / "runs").iterdir()
    run_dir = RunDir.open(path)
    assert [r["epoch"] for r in run_dir.read_metrics()] == [1, 2]
    summary = run_dir.read_summary()
    assert summary["status"] == "failed"
    assert "plugin p0 (file: p0) raised in hook on_epoch_end()" in summary["error"]
    assert (path / "params.npz").exists()


def test_a_raising_file_plugin_on_the_command_line(tmp_path):
    path = plugin_file(
        tmp_path,
        "tracker",
        """\
        from rnnlab.hookspecs import hookimpl

        @hookimpl
        def on_run_start(run):
            raise ConnectionError("no network")
        """,
    )
    experiment = write_experiment(tmp_path)
    result = cli("run", str(experiment), "--plugin", str(path), "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2, result.output
    assert (
        f"error: plugin tracker (file: {path}) raised in hook on_run_start() (at {path}:5): "
        "ConnectionError: no network"
    ) in " ".join(result.output.split())
    assert "Traceback" not in result.output
    [run_path] = (tmp_path / "runs").iterdir()
    assert json.loads((run_path / "summary.json").read_text())["status"] == "failed"


def test_the_hook_error_keeps_its_cause_for_debugging():
    registry = registry_with(Crash(at=1))
    with pytest.raises(PluginError) as err:
        registry.call("on_epoch_end", run=None, epoch=1, metrics={})
    assert isinstance(err.value.__cause__, ValueError)


def test_a_plugin_raising_in_its_registration_hook_is_named():
    class Bad:
        @hookimpl
        def register_tasks(self):
            raise KeyError("x")

    class Half:
        @hookimpl
        def register_tasks(self):
            return [TaskSpec("half", object)]

        @hookimpl
        def register_backends(self):
            raise KeyError("x")

        @hookimpl
        def on_run_start(self, run):
            raise AssertionError("a plugin that failed to load must not run")

    registry = registry_with(Bad(), Half())
    bad, half = registry.plugins["p0"].status, registry.plugins["p1"].status
    assert bad.startswith("failed: register_tasks() raised KeyError: 'x' (at ")
    assert half.startswith("failed: register_backends() raised KeyError: 'x' (at ")
    assert "half" not in registry.tasks and registry.plugins["p1"].tasks == []
    registry.call("on_run_start", run=None)  # Half's hook was unregistered with it


def fake_distribution(site, module_text):
    """A dist-info named wave-plugin 1.2 with entry point ``wave = wave_plugin`` on ``site``."""
    dist = site / "wave_plugin-1.2.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wave-plugin\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[rnnlab]\nwave = wave_plugin\n")
    (site / "wave_plugin.py").write_text(module_text)


def test_installed_looking_distribution_is_found(tmp_path, monkeypatch):
    """An entry point in a dist-info on sys.path: found with source 'package' and its version."""
    fake_distribution(tmp_path, TASK_FILE.format(name="wave"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wave_plugin", raising=False)
    registry = Registry()
    info = registry.plugins["wave"]
    assert (info.source, info.origin, info.version, info.status) == (
        "package",
        "wave-plugin",
        "1.2",
        "ok",
    )
    assert isinstance(registry.task("wave"), TaskSpec)
    monkeypatch.delitem(sys.modules, "wave_plugin")


def test_a_broken_installed_package_is_named(tmp_path, monkeypatch):
    fake_distribution(tmp_path, "import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wave_plugin", raising=False)
    info = Registry(strict=False).plugins["wave"]
    assert info.label == "wave (package: wave-plugin)"
    assert info.status == "failed: ModuleNotFoundError: No module named 'no_such_dependency_xyz'"
    monkeypatch.setenv("RNNLAB_DISABLE_PLUGINS", "wave")
    assert Registry(strict=True).plugins["wave"].status == "disabled"


def test_cli_errors_keep_their_bracketed_location(tmp_path):
    """`[task.windw]` in a message is text, not rich markup to be swallowed."""
    result = cli("run", str(write_experiment(tmp_path)), "--set", "task.windw=3")
    assert result.exit_code == 2
    assert "[task.windw]: unknown key; did you mean 'window'?" in " ".join(result.output.split())


def test_cli_warnings_keep_brackets(tmp_path):
    path = plugin_file(tmp_path, "broken", "raise RuntimeError('[red]x[/red]')\n")
    result = cli(
        "run",
        str(write_experiment(tmp_path, epochs=1)),
        "--plugin",
        str(path),
        "--out",
        str(tmp_path / "runs"),
    )
    assert "RuntimeError: [red]x[/red]" in result.output


def test_unknown_name_mentions_disabled_and_failed_plugins(tmp_path, monkeypatch):
    path = plugin_file(tmp_path, "broken", "raise RuntimeError('boom')\n")
    monkeypatch.setenv("RNNLAB_DISABLE_PLUGINS", "sine")
    registry = Registry([path], strict=False)
    with pytest.raises(PluginError) as err:
        registry.task("delay")
    message = str(err.value)
    assert message.startswith("unknown task 'delay' (valid: ")
    assert message.endswith(
        f"; disabled by RNNLAB_DISABLE_PLUGINS: sine; failed to load: broken (file: {path})"
    )


def test_a_raising_wrapped_hook_is_still_named():
    import functools

    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    class Wrapped:
        @hookimpl
        @logged
        def on_run_start(self, run):
            raise OSError("disk full")

    registry = registry_with(Wrapped())
    with pytest.raises(PluginError, match=r"^plugin p0 \(file: p0\) raised in hook on_run_start"):
        registry.call("on_run_start", run=None)
