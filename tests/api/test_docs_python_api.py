"""docs/python-api.md works as written, and names exactly the public Python API.

Its Python blocks run in order as one script, from a folder holding the repository's
experiments; what the script prints must be what the page's ``output`` blocks show. Its
Reference table must list exactly the names in ``rnnlab.__all__`` and the public members of
``Run`` and ``TrainedModel``, with their signatures.
"""

import inspect
import os
import re
import shutil
import subprocess
import sys

import pytest

import rnnlab
from tests.support.paths import ROOT

PAGE = ROOT / "docs" / "python-api.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
ROW = re.compile(r"^\| `([^`]+)` \|", re.M)
CLASSES = ("Run", "TrainedModel")


def blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(PAGE.read_text()) if lang == kind]


def reference() -> dict[str, str | None]:
    """Reference table: ``{"rnnlab.run": "(experiment, *, ...)", "Run.dir": None, ...}``."""
    text = PAGE.read_text().split("## Reference", 1)[1]
    out = {}
    for cell in ROW.findall(text):
        name, _, args = cell.partition("(")
        out[name] = f"({args}" if args else None
    return out


def signature_text(obj) -> str:
    """``(a, *, b='x', c=())`` from a function's signature, without ``self`` and annotations."""
    parts, star = [], False
    for p in inspect.signature(obj).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return f"({', '.join(parts)})"


def documented_object(name: str):
    owner, _, member = name.partition(".")
    if owner == "rnnlab":
        return getattr(rnnlab, member)
    return getattr(getattr(rnnlab, owner), member)


def test_reference_lists_exactly_the_public_names():
    names = reference()
    assert {n.split(".", 1)[1] for n in names if n.startswith("rnnlab.")} == set(rnnlab.__all__) - {
        "__version__"
    }
    for cls in CLASSES:
        public = {m for m in dir(getattr(rnnlab, cls)) if not m.startswith("_")}
        assert {n.split(".", 1)[1] for n in names if n.startswith(f"{cls}.")} == public, cls


def test_every_documented_name_exists_with_its_signature():
    for name, args in reference().items():
        obj = documented_object(name)  # AttributeError: a documented name disappeared
        if args is not None:
            assert signature_text(obj) == args.replace('"', "'"), name


def test_names_are_imported_on_first_use_only():
    code = (
        "import sys, rnnlab; assert 'rnnlab.api' not in sys.modules; "
        "assert 'numpy' not in sys.modules; rnnlab.load; assert 'rnnlab.api' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_the_page_works_as_written(tmp_path):
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    script = tmp_path / "page.py"
    script.write_text("\n".join(blocks("python")))
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    expected = [line for body in blocks("output") for line in body.splitlines()]
    assert len(shown) == len(expected), done.stdout
    for got, want in zip(shown, expected, strict=True):
        assert got.startswith(want), (got, want)
    assert (tmp_path / "sine-predictions.png").stat().st_size > 0
