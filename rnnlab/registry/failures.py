"""An exception from plugin code becomes one message naming the plugin and its source file.

Plugin code runs in many places: a task's factory, ``build``, ``metrics``, ``demo``, ``figure``
and ``generate``; a backend's ``load``, ``warm_up``, ``epoch_runner`` (and the runner it returns)
and its layer kernels; the hooks. Two things find the plugin behind an exception:

- :func:`guard_task` and :func:`guard_backend` wrap the methods the core calls on a task or
  backend object (on the instance; its class is untouched), so an exception raised by the call
  itself (a plugin written for another version of the contract: ``TypeError: build() takes 1
  positional argument``) is tagged with the plugin and the method;
- otherwise the traceback: the innermost frame in a plugin's module names it.

:func:`plugin_error` turns such an exception into a :class:`PluginError` (exit status 2); the
runner marks the run failed with it in ``summary.json`` and keeps the traceback in ``error.txt``
(:func:`write_traceback`); ``--debug`` shows it on the terminal.
"""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import PluginError, RnnlabError
from ..store.rundir import write_file

ERROR_TXT = "error.txt"
TAG = "_rnnlab_plugin"  # attribute set on an exception raised through a guarded method
TASK_METHODS = ("build", "metrics", "demo", "figure", "generate")
BACKEND_METHODS = ("layer_forward", "layer_backward", "warm_up", "epoch_runner")


@dataclass(frozen=True)
class Origin:
    """Where an exception came from: the plugin (its label: name, source) and what ran."""

    plugin: str
    what: str = ""
    file: str = ""  # the plugin's source file (the innermost frame in it, when there is one)
    line: int | None = None

    def where(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file


# -- guarding the objects plugins hand to the core -------------------------------------------
def _guarded(fn, origin: Origin, wrap_result: str = ""):
    if getattr(fn, TAG, None) is not None:
        return fn  # already guarded (a backend object shared between runs)

    @functools.wraps(fn, updated=())  # no copy of fn's __dict__: it would go stale
    def call(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except SystemExit as exc:  # the plugin's failure, never the end of rnnlab
            raise _tagged(as_failure(exc), origin) from None
        except Exception as exc:
            if not isinstance(exc, RnnlabError):
                _tagged(exc, origin)
            raise
        if wrap_result and callable(result):
            return _guarded(result, Origin(origin.plugin, wrap_result, origin.file))
        return result

    setattr(call, TAG, origin)
    return call


def _tagged(exc: BaseException, origin: Origin) -> BaseException:
    if getattr(exc, TAG, None) is None:
        try:
            setattr(exc, TAG, origin)
        except (AttributeError, TypeError):
            pass
    return exc


class PluginExit(Exception):
    """Plugin code called ``sys.exit()`` (or raised SystemExit): a failure of that plugin, like
    any exception it raises. Carries the SystemExit's traceback, so that it names the file and
    line."""


def as_failure(exc: BaseException) -> BaseException:
    """``exc``, or a :class:`PluginExit` in place of a SystemExit (same traceback): code that
    handles a plugin's exceptions handles its exits the same way."""
    if not isinstance(exc, SystemExit):
        return exc
    error = PluginExit(f"called sys.exit({exc.code!r})")
    error.__cause__ = exc.__cause__
    return error.with_traceback(exc.__traceback__)


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: bad"``; ``"called sys.exit(0)"`` for an exit."""
    exc = as_failure(exc)
    return str(exc) if isinstance(exc, PluginExit) else f"{type(exc).__name__}: {exc}"


def _source_file(obj) -> str:
    try:
        return inspect.getsourcefile(type(obj)) or ""
    except TypeError:
        return ""


def _guard(obj, label: str, kind: str, methods) -> object:
    source = _source_file(obj)
    for name in methods:
        method = getattr(obj, name, None)
        if method is None or not callable(method):
            continue
        origin = Origin(label, f"{kind} {name}()", source)
        wrapped = _guarded(method, origin, "epoch runner" if name == "epoch_runner" else "")
        try:
            object.__setattr__(obj, name, wrapped)
        except (AttributeError, TypeError):
            return obj  # __slots__ or frozen: the traceback still names the plugin
    return obj


def guard_task(task, label: str, name: str):
    """``task`` with its methods tagging their exceptions with ``label`` (the plugin)."""
    return _guard(task, label, f"task {name!r}", TASK_METHODS)


def guard_backend(backend, label: str, name: str):
    """``backend`` with its methods (and the epoch runner it returns) tagging exceptions."""
    return _guard(backend, label, f"backend {name!r}", BACKEND_METHODS)


def guard_call(fn, label: str, what: str):
    """``fn`` (a plugin's factory or loader), tagging the exceptions it raises."""
    source = ""
    try:
        source = inspect.getsourcefile(fn) or ""
    except TypeError:
        pass
    return _guarded(fn, Origin(label, what, source))


def guarded_task(registry, name: str, options: dict, context):
    """The task ``name`` built by its plugin's factory, guarded."""
    label = registry.provider("task", name)
    factory = guard_call(registry.task(name).factory, label, f"task {name!r} factory")
    return guard_task(factory(options, context), label, name)


def guarded_backend(registry, spec):
    """The backend ``spec`` loaded, guarded."""
    label = registry.provider("backend", spec.name)
    return guard_backend(
        guard_call(spec.load, label, f"backend {spec.name!r} load()")(), label, spec.name
    )


# -- finding the plugin behind an exception --------------------------------------------------
def plugin_modules(registry=None) -> dict[str, str]:
    """``{module name prefix: plugin label}`` for every plugin: from the registry when there is
    one, else from the entry points and the plugin files imported so far."""
    out: dict[str, str] = {}
    if registry is not None:
        for name, info in registry.plugins.items():
            plugin = registry.pm.get_plugin(name)
            if plugin is None:
                continue
            module = (
                getattr(plugin, "__name__", None)
                if inspect.ismodule(plugin)
                else type(plugin).__module__
            )
            if module:
                out[_prefix(module)] = info.label
        return out
    for ep in entry_points(group="rnnlab"):
        dist = ep.dist.name if ep.dist is not None else "?"
        source = "built-in" if dist == "rnnlab" else "package"
        out[_prefix(ep.module)] = f"{ep.name} ({source}: {dist})"
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("rnnlab_file_plugin_"):
            path = getattr(module, "__file__", "") or module_name
            out[module_name] = f"{Path(path).stem} (file: {path})"
    return out


def _prefix(module: str) -> str:
    """The package a plugin's code lives in: its top-level package (the core's own modules,
    ``rnnlab.*``, are never a plugin's)."""
    top = module.split(".")[0]
    return module if top == "rnnlab" else top


def _plugin_of(module: str, modules: dict[str, str]) -> str | None:
    if module == "rnnlab" or module.startswith("rnnlab."):
        return None
    for prefix, label in modules.items():
        if module == prefix or module.startswith(prefix + "."):
            return label
    return None


def origin_of(exc: BaseException, registry=None) -> Origin | None:
    """The plugin behind ``exc``, or None when the traceback shows no plugin code."""
    tagged = getattr(exc, TAG, None)
    modules = plugin_modules(registry)
    innermost = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        label = _plugin_of(frame.f_globals.get("__name__", ""), modules)
        if label is not None:
            innermost = (label, frame.f_code.co_filename, line, frame.f_code.co_name)
    if tagged is not None:
        if innermost is not None and innermost[0] == tagged.plugin:
            return Origin(tagged.plugin, tagged.what, innermost[1], innermost[2])
        return tagged
    if innermost is None:
        return None
    label, file, line, function = innermost
    return Origin(label, f"{function}()", file, line)


def plugin_error(
    exc: BaseException, registry=None, run_dir: Path | None = None
) -> PluginError | None:
    """One message for an exception raised by plugin code; None when it is not (a user error,
    already one message, or an error in rnnlab itself)."""
    if isinstance(exc, RnnlabError | MemoryError) or not isinstance(exc, Exception | SystemExit):
        return None  # MemoryError: the CLI says what to make smaller
    origin = origin_of(exc, registry)
    if origin is None:
        return None
    what = f" in {origin.what}" if origin.what else ""
    where = f" ({origin.where()})" if origin.where() else ""
    detail = " ".join(describe_exception(exc).split())
    kept = f"; the traceback is in {Path(run_dir) / ERROR_TXT}" if run_dir is not None else ""
    return PluginError(
        f"plugin {origin.plugin} failed{what}{where}: {detail}{kept} (--debug shows the traceback)"
    )


def write_traceback(run_dir: Path, exc: BaseException) -> None:
    """Keep ``exc``'s traceback (with its causes) in ``run_dir/error.txt``; never raises."""
    text = "".join(traceback.format_exception(exc))
    try:
        write_file(Path(run_dir) / ERROR_TXT, text.encode())
    except (RnnlabError, OSError):
        pass
