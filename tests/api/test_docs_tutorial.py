"""docs/writing-plugins.md works as written: its files are extracted, its commands run in order in
an empty folder, and the packages it builds match the reference copies under examples/.

`pip install -e ./PKG` is emulated without network or pip: a dist-info with the entry points of
PKG/pyproject.toml is written to a folder on PYTHONPATH, with PKG/src beside it, which is what an
editable install amounts to for importlib.metadata. Every other command runs for real.
"""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.paths import ROOT

TUTORIAL = ROOT / "docs" / "writing-plugins.md"
EXAMPLES = ROOT / "examples"
FENCE = re.compile(r'^```(\w*)(?: title="([^"]+)")?\n(.*?)^```$', re.S | re.M)
RNNLAB = "import sys; from rnnlab.cli import main; sys.exit(main())"
IGNORED = {"__pycache__", ".pytest_cache", "runs"}


def steps(markdown: str) -> list[tuple[str, str, str]]:
    """``("file", path, text)`` and ``("run", command, "")`` in the order of the page."""
    out = []
    for lang, title, body in FENCE.findall(markdown):
        if title:
            out.append(("file", title, body))
        elif lang == "console":
            out += [("run", line[2:], "") for line in body.splitlines() if line.startswith("$ ")]
        else:
            assert lang not in ("python", "toml"), f"a {lang} block without a file name:\n{body}"
    return out


def editable_install(package: Path, site: Path) -> Path:
    """What ``pip install -e package`` leaves for importlib.metadata: a dist-info with the
    package's entry points; returns the source folder to put on the path."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    groups = project.get("entry-points", {})
    lines = [
        line
        for group, eps in groups.items()
        for line in (f"[{group}]", *(f"{k} = {v}" for k, v in eps.items()))
    ]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return package / "src"


def run_command(command: str, cwd: Path, env: dict, site: Path) -> None:
    words = shlex.split(command)
    if words[:3] == ["pip", "install", "-e"]:
        source = editable_install(cwd / words[3], site)
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(source)])
        return
    if words[0] == "rnnlab":
        argv = [sys.executable, "-c", RNNLAB, *words[1:]]
    elif words[0] == "pytest":
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *words[1:]]
    else:
        assert words[0] in ("mkdir", "mv"), f"the tutorial runs an unexpected {command!r}"
        argv = words
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not IGNORED & set(p.relative_to(folder).parts)
    }


@pytest.mark.slow
def test_the_tutorial_works_as_written(tmp_path):
    work, site = tmp_path / "delay-demo", tmp_path / "site"
    work.mkdir()
    site.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNLAB_")}
    env["PYTHONPATH"] = str(site)
    env["RNNLAB_STRICT_PLUGINS"] = "1"  # any plugin failing to load fails the tutorial
    for kind, what, text in steps(TUTORIAL.read_text()):
        if kind == "file":
            (work / what).parent.mkdir(parents=True, exist_ok=True)
            (work / what).write_text(text)
        else:
            run_command(what, work, env, site)
    runs = sorted((work / "runs").iterdir())
    assert len(runs) == 4  # delay (file), delay (package), delay on loop (file), (package)
    for package in ("rnnlab-delay", "rnnlab-loop"):
        assert tree(work / package) == tree(EXAMPLES / package), (
            f"examples/{package} differs from what docs/writing-plugins.md builds"
        )


def test_every_titled_block_is_a_step():
    found = steps(TUTORIAL.read_text())
    files = {what for kind, what, _ in found if kind == "file"}
    assert {
        "delay_task.py",
        "delay.toml",
        "rnnlab-delay/pyproject.toml",
        "loop_backend.py",
        "rnnlab-loop/pyproject.toml",
    } <= files
    assert any(kind == "run" and what.startswith("rnnlab run") for kind, what, _ in found)
