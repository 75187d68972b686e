"""Plugins' own state in checkpoints (an early-stopping counter, a tracker's run id), through
the ``checkpoint_state`` and ``restore_state`` hooks, kept per plugin under its name.

Each plugin is called on its own (not through one pluggy call) so that every state stays with
the plugin that returned it, and an error names that plugin.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import PluginError
from .manager import one_line


def _impls(registry, hook: str):
    return getattr(registry.hook, hook).get_hookimpls()


def _call(registry, impl, hook: str, **kwargs):
    try:
        return impl.function(**{name: kwargs[name] for name in impl.argnames})
    except Exception as exc:
        raise PluginError(
            f"plugin {_label(registry, impl.plugin_name)} raised in hook {hook}(): "
            f"{one_line(f'{type(exc).__name__}: {exc}')}"
        ) from exc


def _label(registry, name: str) -> str:
    info = registry.plugins.get(name)
    return info.label if info is not None else name


def collect(registry, run) -> dict[str, dict[str, Any]]:
    """``{plugin name: state}`` from every plugin's ``checkpoint_state(run)``, each a copy made
    through JSON now (so later changes by the plugin do not leak into a pending checkpoint)."""
    out = {}
    for impl in _impls(registry, "checkpoint_state"):
        state = _call(registry, impl, "checkpoint_state", run=run)
        if state is None:
            continue
        who = _label(registry, impl.plugin_name)
        if not isinstance(state, dict):
            raise PluginError(
                f"plugin {who}: checkpoint_state() must return a dict or None, "
                f"not {type(state).__name__}"
            )
        try:
            out[impl.plugin_name] = json.loads(json.dumps(state))
        except (TypeError, ValueError) as exc:
            raise PluginError(
                f"plugin {who}: checkpoint_state() returned a value JSON cannot hold ({exc})"
            ) from None
    return out


def restore(registry, run, states: dict[str, dict[str, Any]]) -> list[str]:
    """Hand each plugin the state it saved; return the names of plugins that saved a state
    but are not loaded now (their state is not restored)."""
    seen = set()
    for impl in _impls(registry, "restore_state"):
        if impl.plugin_name in states:
            seen.add(impl.plugin_name)
            _call(registry, impl, "restore_state", run=run, state=states[impl.plugin_name])
    loaded = {impl.plugin_name for impl in _impls(registry, "checkpoint_state")} | seen
    return sorted(set(states) - loaded)
