"""The plugin manager: entry points (built-in and installed packages) and local plugin files.

A plugin that fails to load is recorded with its error and the rest keep working, unless
strict mode (``RNNLAB_STRICT_PLUGINS=1``) makes that fatal. ``RNNLAB_DISABLE_PLUGINS=a,b``
skips named plugins; ``RNNLAB_PLUGINS=path.py:other.py`` adds plugin files. The registry is built
per invocation: there is no global plugin state.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from .. import hookspecs
from ..cells import BUILTIN_CELLS, CellSpec
from ..errors import PluginError, closest
from ..experiment.schema import STUDY_TABLES, TABLES
from ..specs import BackendSpec, TableSpec, TaskSpec
from .failures import as_failure, describe_exception

GROUP = "rnnlab"
ESSENTIAL = ("numpy",)  # the reference backend's plugin cannot be disabled
CORE_TABLE_NAMES = (*TABLES, *STUDY_TABLES)  # rnnlab's own tables: no plugin declares them


@dataclass
class PluginInfo:
    """What `rnnlab plugins` shows about one plugin."""

    name: str
    source: str  # "built-in", "package" or "file"
    origin: str  # distribution name or file path
    version: str = ""
    status: str = "ok"  # "ok", "disabled" or "failed: <error>"
    tasks: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    executors: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.source}: {self.origin})"


def _strict_default() -> bool:
    return os.environ.get("RNNLAB_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def _disabled_default() -> set[str]:
    raw = os.environ.get("RNNLAB_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _env_files() -> list[Path]:
    raw = os.environ.get("RNNLAB_PLUGINS", "")
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def load_file_module(path: Path):
    """Import a single ``.py`` file as a module under a name derived from its path."""
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"rnnlab_file_plugin_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def registers_nothing(module, pm: pluggy.PluginManager) -> str:
    """Why a plugin file that implements no hook is a mistake, and the likely one: a hook
    function without its ``@hookimpl`` decorator."""
    hooks = [name for name in vars(pm.hook) if not name.startswith("_")]
    undecorated = [name for name in hooks if callable(getattr(module, name, None))]
    if undecorated:
        return (
            f"registers nothing: {', '.join(f'{n}()' for n in undecorated)} "
            f"{'lacks' if len(undecorated) == 1 else 'lack'} the @hookimpl decorator "
            "(from rnnlab.plugin import hookimpl)"
        )
    return (
        "registers nothing: no function is decorated with @hookimpl (from rnnlab.plugin "
        "import hookimpl), so rnnlab finds no task, backend or hook in it"
    )


class Registry:
    """A plugin manager plus the name -> spec tables built from the registration hooks."""

    def __init__(self, files=(), *, strict: bool | None = None, disabled=None, entry_points_=True):
        self.strict = _strict_default() if strict is None else strict
        self.disabled = set(_disabled_default() if disabled is None else disabled)
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.tasks: dict[str, TaskSpec] = {}
        self.backends: dict[str, BackendSpec] = {}
        self.executors: dict[str, Any] = {}  # name -> rnnlab.executors.ExecutorSpec
        self.cells: dict[str, CellSpec] = dict(BUILTIN_CELLS)  # plugins add, never replace
        self.tables: dict[str, TableSpec] = {}  # config tables plugins declare
        self._providers: dict[tuple[str, str], list[PluginInfo]] = {}
        if entry_points_:
            self._load_entry_points()
        for path in [*_env_files(), *files]:
            self.add_file(path)

    # -- loading ---------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else ""
            source = "built-in" if dist == "rnnlab" else "package"
            info = PluginInfo(ep.name, source, dist, version)
            self._add(info, ep.load)

    def add_file(self, path: Path) -> PluginInfo:
        """Load a single ``.py`` file as a plugin (from --plugin, the config or RNNLAB_PLUGINS)."""
        path = Path(path)
        info = PluginInfo(path.stem, "file", str(path))
        if not path.is_file():
            self._fail(info, f"no such file: {path}")
            return info
        key = str(path.resolve())
        if any(
            p.source == "file" and str(Path(p.origin).resolve()) == key
            for p in self.plugins.values()
        ):
            return info  # the same file named twice (config and command line) loads once
        self._add(info, lambda: load_file_module(path))
        return info

    def file_records(self) -> list[dict[str, str]]:
        """The plugin files loaded, as a run records them: ``{"path": absolute path, "sha256":
        its content's hash}`` each, so that a later command finds them and notices a change."""
        return [
            {"path": str(Path(p.origin).resolve()), "sha256": file_sha256(Path(p.origin))}
            for p in self.plugins.values()
            if p.source == "file" and p.status == "ok" and Path(p.origin).is_file()
        ]

    def add_module(self, module, name: str, source: str = "package", version: str = "") -> None:
        """Register an already-imported module or object (used by tests and embedding code)."""
        self._add(
            PluginInfo(name, source, getattr(module, "__name__", name), version), lambda: module
        )

    def _add(self, info: PluginInfo, load) -> None:
        if info.name in self.plugins:
            other = self.plugins[info.name]
            self.plugins[info.label] = info  # listed (and reported) beside the one that won
            self._fail(info, f"plugin name {info.name!r} is already taken by {other.label}")
            return
        self.plugins[info.name] = info
        if info.name in self.disabled and info.name not in ESSENTIAL:
            info.status = "disabled"
            return
        try:
            module = load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the others down
            self._fail(info, f"{describe_exception(exc)}{_line_in(exc, info)}")
            return
        if not info.version:
            info.version = str(getattr(module, "__version__", ""))
        try:
            self.pm.register(module, name=info.name)
            unknown_hooks(self.pm, module)
            self.pm.check_pending()  # hook names or arguments that match no hookspec
        except Exception as exc:
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            reason = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            self._fail(info, one_line(reason))
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        if not info.hooks and info.source == "file":
            self.pm.unregister(module)
            self._fail(info, registers_nothing(module, self.pm))
            return
        self._collect(info, module)

    def _collect(self, info: PluginInfo, module) -> None:
        """Add the plugin's tasks, backends and executors; if a registration hook raises, add
        none of them and unregister the plugin, so none of its hooks run."""
        tables = {
            "task": (self.tasks, info.tasks),
            "backend": (self.backends, info.backends),
            "executor": (self.executors, info.executors),
            "cell": (self.cells, info.cells),
            "table": (self.tables, info.tables),
        }
        found = []
        for hook, kind in (
            ("register_tasks", "task"),
            ("register_backends", "backend"),
            ("register_executors", "executor"),
            ("register_cells", "cell"),
            ("register_tables", "table"),
        ):
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if impl.plugin is not module:
                    continue
                try:
                    found += [(kind, spec) for spec in impl.function() or []]
                except (Exception, SystemExit) as exc:
                    self.pm.unregister(module)
                    info.hooks = []
                    where = _line_in(exc, info, impl.function)
                    self._fail(info, f"{hook}() raised {describe_exception(exc)}{where}")
                    return
        builtin = [s.name for kind, s in found if kind == "cell" and s.name in BUILTIN_CELLS]
        if builtin:
            self.pm.unregister(module)
            info.hooks = []
            self._fail(
                info,
                f"register_cells() returned cell {builtin[0]!r}, which is built "
                f"into rnnlab (built-in cells: {', '.join(BUILTIN_CELLS)})",
            )
            return
        core = [s.name for kind, s in found if kind == "table" and s.name in CORE_TABLE_NAMES]
        if core:
            self.pm.unregister(module)
            info.hooks = []
            self._fail(
                info,
                f"register_tables() returned table {core[0]!r}, which is rnnlab's "
                f"own (rnnlab's tables: {', '.join(CORE_TABLE_NAMES)})",
            )
            return
        for kind, spec in found:
            table, names = tables[kind]
            providers = self._providers.setdefault((kind, spec.name), [])
            providers.append(info)
            names.append(spec.name)
            if len(providers) > 1:
                message = self._conflict(kind, spec.name)
                if self.strict:
                    raise PluginError(message)
                table.pop(spec.name, None)
            else:
                table[spec.name] = spec

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.status = f"failed: {error}"
        self.plugins.setdefault(info.name, info)
        if self.strict:
            raise PluginError(f"plugin {info.label} failed to load: {error}")

    def _conflict(self, kind: str, name: str) -> str:
        labels = " and ".join(p.label for p in self._providers[(kind, name)])
        return f"{kind} {name!r} is provided by more than one plugin: {labels}"

    # -- lookup ----------------------------------------------------------------------------
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status.startswith("failed")]

    def task(self, name: str) -> TaskSpec:
        return self._lookup("task", name, self.tasks)

    def backend(self, name: str) -> BackendSpec:
        return self._lookup("backend", name, self.backends)

    def cell(self, name: str) -> CellSpec:
        return self._lookup("cell", name, self.cells)

    def conflict(self, kind: str, name: str) -> str | None:
        """The error naming every plugin that provides ``kind`` ``name``, when more than one
        does (the name is then left out of its table); else None."""
        return (
            self._conflict(kind, name) if len(self._providers.get((kind, name), [])) > 1 else None
        )

    def executor(self, name: str):
        return self._lookup("executor", name, self.executors)

    def provider(self, kind: str, name: str) -> str:
        """The label of the plugin that provides ``kind`` ``name`` ("task", "sine")."""
        found = self._providers.get((kind, name), [])
        return found[0].label if len(found) == 1 else f"providing {kind} {name!r}"

    def _lookup(self, kind: str, name: str, table: dict):
        if name in table:
            return table[name]
        if len(self._providers.get((kind, name), [])) > 1:
            raise PluginError(self._conflict(kind, name))
        raise PluginError(unknown_name_message(kind, name, sorted(table)) + self._not_loaded())

    def _not_loaded(self) -> str:
        """Plugins that might have provided a missing name: disabled or failed to load."""
        out = ""
        disabled = [p.name for p in self.plugins.values() if p.status == "disabled"]
        if disabled:
            out += f"; disabled by RNNLAB_DISABLE_PLUGINS: {', '.join(disabled)}"
        failed = [p.label for p in self.failures()]
        if failed:
            out += f"; failed to load: {', '.join(failed)}"
        return out

    @property
    def hook(self):
        return self.pm.hook

    def call(self, hook: str, **kwargs) -> list:
        """Call a hook (as ``registry.hook.<hook>(**kwargs)``); an exception a plugin raises
        becomes a PluginError naming the plugin, its source and the hook."""
        caller = getattr(self.pm.hook, hook)
        try:
            return caller(**kwargs)
        except (Exception, SystemExit) as exc:  # an exit in a hook is the plugin's failure
            impls = caller.get_hookimpls()
            name = raising_plugin(caller, exc.__traceback__) or (
                impls[0].plugin_name if len(impls) == 1 else None
            )
            who, where = "a plugin", ""
            if name in self.plugins:
                who = self.plugins[name].label
                impl = next(i for i in impls if i.plugin_name == name)
                where = _line_in(exc, self.plugins[name], impl.function)
            raise PluginError(
                f"plugin {who} raised in hook {hook}(){where}: {one_line(describe_exception(exc))}"
            ) from as_failure(exc)


def _line_in(exc: BaseException, info: PluginInfo, function=None) -> str:
    """`` (at FILE:LINE)``: the innermost line of the plugin's own code in ``exc``'s traceback
    (its file for a file plugin, ``function``'s file otherwise); ``""`` when none shows."""
    files = set()
    if info.source == "file":
        files.add(str(Path(info.origin).resolve()))
    code = getattr(function, "__code__", None)
    if code is not None:
        files.add(str(Path(code.co_filename).resolve()))
    found = ""
    for frame, line in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename
        if name in files or str(Path(name).resolve()) in files:
            found = f" (at {name}:{line})"
    return found


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    """`unknown task 'sin'; did you mean 'sine'? (valid: chargen, sine)`."""
    valid_names = ", ".join(valid) or "none installed"
    return f"unknown {kind} {name!r}{closest(name, valid)} (valid: {valid_names})"


def unknown_hooks(pm: pluggy.PluginManager, module) -> None:
    """Raise PluginError for a hook implementation whose name matches no hookspec, suggesting
    the closest hook (pluggy's check_pending says the same, without the suggestion)."""
    known = sorted(n for n in dir(hookspecs) if pm.parse_hookspec_opts(hookspecs, n))
    for caller in pm.get_hookcallers(module) or []:
        if caller.spec is None and any(
            not i.optionalhook for i in caller.get_hookimpls() if i.plugin is module
        ):
            raise PluginError(
                f"hook implementation {caller.name!r} matches no hook"
                f"{closest(caller.name, known)} "
                f"(hooks: {', '.join(known)})"
            )


def raising_plugin(caller, tb) -> str | None:
    """The name of the plugin whose hook implementation appears in traceback ``tb``."""
    codes = {
        impl.function.__code__: impl.plugin_name
        for impl in caller.get_hookimpls()
        if hasattr(impl.function, "__code__")
    }
    while tb is not None:
        if tb.tb_frame.f_code in codes:
            return codes[tb.tb_frame.f_code]
        tb = tb.tb_next
    return None


def one_line(text: str) -> str:
    """Collapse a multi-line message (pluggy's validation errors) into one line."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())
