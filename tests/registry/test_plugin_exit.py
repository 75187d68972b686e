"""Plugin code that calls sys.exit() (in a hook, a task method, or at import) fails as any other
plugin error does: one message naming the plugin, its file and line, a non-zero exit status,
the run marked failed; a sweep records the run as failed and goes on to the next."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rnnlab.cli import main
from rnnlab.registry.manager import Registry
from tests.support.sweeps import BASE
from tests.support.tiny_runs import write_tiny

IN_HOOK = """\
import sys
from rnnlab.hookspecs import hookimpl

@hookimpl
def on_epoch_end(epoch):
    sys.exit(0)
"""

IN_TASK = """\
import sys
from rnnlab.hookspecs import hookimpl
from rnnlab.specs import TaskSpec
from rnnlab_sine.task import OPTIONS, SineTask


class ExitsInBuild(SineTask):
    def build(self, rng):
        sys.exit(0)


class ExitsInMetrics(SineTask):
    def metrics(self, model, dataset, split):
        raise SystemExit("done here")


@hookimpl
def register_tasks():
    return [TaskSpec("exitbuild", ExitsInBuild, OPTIONS),
            TaskSpec("exitmetrics", ExitsInMetrics, OPTIONS)]
"""

AT_IMPORT = """\
import sys
from rnnlab.hookspecs import hookimpl
sys.exit(0)
"""


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("source", "sets", "line", "what"),
    [
        (IN_HOOK, [], 6, "called sys.exit(0)"),
        (IN_TASK, ["task.name=exitbuild"], 9, "called sys.exit(0)"),
        (IN_TASK, ["task.name=exitmetrics"], 14, "called sys.exit('done here')"),
    ],
    ids=["hook", "build", "metrics"],
)
def test_an_exit_in_plugin_code_is_the_plugins_failure(tmp_path, source, sets, line, what):
    plugin = tmp_path / "quitter.py"
    plugin.write_text(source)
    args = ["run", write_tiny(tmp_path), "--plugin", plugin, "--out", tmp_path / "runs"]
    for s in ["train.epochs=2", *sets]:
        args += ["--set", s]
    result = cli(*args)
    assert result.exit_code == 2, result.output
    text = one_line(result.output)
    assert "error: plugin quitter (file:" in text, text
    assert f"{plugin}:{line}" in text and what in text, text
    for run in (tmp_path / "runs").glob("*"):
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "failed" and what in summary["error"]


def test_an_exit_at_import_is_a_load_failure_naming_the_line(tmp_path):
    plugin = tmp_path / "quitter.py"
    plugin.write_text(AT_IMPORT)
    registry = Registry([plugin], strict=False)
    [info] = registry.failures()
    assert info.status == f"failed: called sys.exit(0) (at {plugin}:3)"
    assert "sine" in registry.tasks  # the others keep working
    result = cli(
        "run", write_tiny(tmp_path), "--plugin", plugin, "--set", "task.name=q", "--out", tmp_path
    )
    assert result.exit_code == 2, result.output
    assert f"failed to load: quitter (file: {plugin})" in one_line(result.output)


def test_a_sweep_records_the_exit_as_a_failed_run_and_goes_on(tmp_path):
    plugin = tmp_path / "quitter.py"
    plugin.write_text(IN_HOOK)
    config = tmp_path / "sweep.toml"
    config.write_text(BASE.format(plugins="") + '[sweep]\n"model.hidden_size" = [3, 4]\n')
    out = tmp_path / "out"
    result = cli("sweep", config, "--plugin", plugin, "--workers", "1", "--out", out, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output[result.output.index("{") :])
    runs = report["runs"]
    assert len(runs) == 2 and all(r["status"] == "failed" for r in runs), runs
    assert all(f"{plugin}:6" in r["error"] for r in runs)
