"""Where the text comes from: inline ``text``, a UTF-8 file ``path`` (relative to the experiment
file), or ``stdlib_modules``: the source of Python standard-library modules, read from this
installation's stdlib folder (``sysconfig.get_paths()["stdlib"]``), so it needs no download.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from rnnlab.plugin import ConfigError, read_data

SOURCES = ("text", "path", "stdlib_modules")


def stdlib_file(name: str) -> Path:
    """``textwrap`` -> <stdlib>/textwrap.py; a package -> its __init__.py; ``json.decoder`` ->
    <stdlib>/json/decoder.py. Nothing is imported."""
    base = Path(sysconfig.get_paths()["stdlib"]).joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no source file for standard-library module {name!r} in {base.parent} "
        f"(a module written in Python, e.g. 'textwrap' or 'json.decoder')",
        table="task",
        key="stdlib_modules",
    )


def read_utf8(path: Path, key: str) -> str:
    """The text of ``path``; a missing, unreadable, special (a FIFO, a device) or non-UTF-8
    file is a ConfigError on ``[task.<key>]``."""
    try:
        raw = read_data(path)
    except ConfigError as exc:
        raise ConfigError(exc.detail, table="task", key=key) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", table="task", key=key
        ) from None


def load_corpus(options: dict, base_dir: Path) -> tuple[str, dict]:
    """The corpus text (repeated ``repeat`` times) and a JSON-ready description of its origin."""
    given = [k for k in SOURCES if options.get(k)]
    if len(given) != 1:
        what = "none is set" if not given else f"got {', '.join(given)}"
        raise ConfigError(
            f"set exactly one of {', '.join(SOURCES)} ({what})",
            table="task",
            key=given[-1] if given else "text",
        )
    key = given[0]
    if key == "text":
        text, origin = options["text"], {"text": "inline"}
    elif key == "path":
        path = base_dir / options["path"]
        text, origin = read_utf8(path, "path"), {"path": str(path)}
    else:
        files = [stdlib_file(name) for name in options["stdlib_modules"]]
        text = "".join(read_utf8(f, "stdlib_modules") for f in files)
        origin = {"stdlib_files": [str(f) for f in files]}
    if not text:
        raise ConfigError(f"the corpus is empty ({origin})", table="task", key=key)
    return text * options["repeat"], origin
