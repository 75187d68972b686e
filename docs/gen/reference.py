"""The reference pages that are generated from the code, so they cannot drift from it.

- the experiment file: every table and key with its type, default, range and meaning, rendered
  from a JSON Schema (draft 2020-12) of the file (:func:`experiment_schema`);
- the command line: every command of the ``rnnlab`` click group, its arguments and options;
- the Python API, the plugin API and the conformance kit: one mkdocstrings block per public name
  (``rnnlab.__all__``, ``rnnlab.plugin.__all__``, the public functions of ``rnnlab.testing``).

``docs/gen/pages.py`` writes these pages into the site at build time (mkdocs-gen-files);
``tests/api/test_docs_reference.py`` checks them against the code without building the site.
Each ``*_page()`` function returns one page's Markdown.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from typing import Any

import click

# -- the experiment file -----------------------------------------------------------------------
TYPE_WORDS = {
    "integer": "integer",
    "number": "float",
    "string": "string",
    "boolean": "boolean",
    "object": "table",
}
TABLE_ORDER = ("experiment", "task", "model", "train", "diagnostics", "compare")


def experiment_schema() -> dict[str, Any]:
    """The JSON Schema of the experiment file with every installed plugin's tasks and tables:
    the one ``rnnlab schema`` prints (:mod:`rnnlab.experiment.json_schema`), generated from the
    declarations the validator itself reads. The ``[sweep]`` table is left to its own page."""
    from rnnlab.experiment.json_schema import experiment_schema as generate
    from rnnlab.experiment.schema import SWEEP
    from rnnlab.registry.manager import Registry

    schema = generate(Registry())
    schema["properties"].pop(SWEEP, None)
    return schema


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def type_word(prop: dict[str, Any]) -> str:
    kind = prop.get("type", "")
    if isinstance(kind, list):
        return " or ".join(TYPE_WORDS.get(k, k) for k in kind)
    if kind == "array":
        item = prop.get("items", {}).get("type", "")
        return f"array of {TYPE_WORDS.get(item, item)}s" if item else "array"
    return TYPE_WORDS.get(kind, kind)


def range_text(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return ", ".join(f"`{toml_value(v)}`" for v in prop["enum"])
    low = [f"≥ {prop['minimum']:g}"] if "minimum" in prop else []
    low += [f"> {prop['exclusiveMinimum']:g}"] if "exclusiveMinimum" in prop else []
    high = [f"≤ {prop['maximum']:g}"] if "maximum" in prop else []
    high += [f"< {prop['exclusiveMaximum']:g}"] if "exclusiveMaximum" in prop else []
    high += [f"at most {prop['maxLength']} characters"] if "maxLength" in prop else []
    return ", ".join(low + high)


def cell(text: str) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def keys_table(properties: dict[str, Any], table: str) -> list[str]:
    lines = ["| key | type | default | values | meaning |", "|---|---|---|---|---|"]
    for key, prop in properties.items():
        default = f"`{toml_value(prop['default'])}`" if "default" in prop else "required"
        lines.append(
            f'| <span id="{table}.{key}">`{key}`</span> | {type_word(prop)} | {cell(default)} '
            f"| {cell(range_text(prop))} | {cell(prop.get('description', ''))} |"
        )
    return lines


def task_branches(task: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``[(task name, its table schema), ...]`` from ``allOf``/``oneOf``/``anyOf`` branches that
    pin ``name`` (``if``/``then`` or a ``const`` in the branch itself)."""
    out = []
    for branch in [*task.get("allOf", ()), *task.get("oneOf", ()), *task.get("anyOf", ())]:
        test = branch.get("if", branch)
        name = test.get("properties", {}).get("name", {})
        value = name.get("const", (name.get("enum") or [None])[0])
        body = branch.get("then", branch)
        if value is not None:
            props = {k: v for k, v in body.get("properties", {}).items() if k != "name"}
            out.append((value, {**body, "properties": props}))
    return sorted(out)


def experiment_page(schema: dict[str, Any] | None = None) -> str:
    schema = experiment_schema() if schema is None else schema
    tables = schema["properties"]
    order = [t for t in TABLE_ORDER if t in tables] + sorted(set(tables) - set(TABLE_ORDER))
    out = [
        "# The experiment file",
        "",
        "Every table and key an experiment file may hold, with its type, its default, the values",
        "it accepts and what it does. This page is generated from the declarations rnnlab",
        "validates an experiment against, for the plugins installed where the site was built,",
        "so a key added to rnnlab appears here by itself.",
        "",
        "Every key has a default except `task.name`. Unknown tables and keys, wrong types and",
        "values out of range are refused before any work starts, with one message naming the",
        "file, the table, the key and the closest valid name. `--set TABLE.KEY=VALUE` on the",
        "command line (or `set=[...]` in Python) overrides any key with the same checks. The",
        "`[sweep]` table that `rnnlab sweep` reads is described in [Sweeps](../sweeps.md), the",
        "`[search]` and `[stats]` tables in [Searches and statistics](../search-and-stats.md).",
        "",
    ]
    for name in order:
        table = tables[name]
        out += [f"## `[{name}]`", ""]
        if table.get("description"):
            out += [table["description"][:1].upper() + table["description"][1:] + ".", ""]
        own = table.get("properties", {})
        out += keys_table(own, name) + [""]
        for task, branch in task_branches(table):
            out += [f'### `name = "{task}"`', ""]
            if branch.get("description"):
                out += [branch["description"][:1].upper() + branch["description"][1:] + ".", ""]
            if branch["properties"]:
                out += keys_table(branch["properties"], f"task.{task}") + [""]
            else:
                out += ["No options of its own.", ""]
    return "\n".join(out)


def experiment_keys(schema: dict[str, Any] | None = None) -> set[str]:
    """Every documented key as ``table.key`` (task options as ``task.<task>.key``)."""
    schema = experiment_schema() if schema is None else schema
    keys = set()
    for name, table in schema["properties"].items():
        keys |= {f"{name}.{k}" for k in table.get("properties", {})}
        for task, branch in task_branches(table):
            keys |= {f"task.{task}.{k}" for k in branch["properties"]}
    return keys


# -- the command line --------------------------------------------------------------------------
def commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    """``[("rnnlab run", command), ...]``, nested groups included, in alphabetical order."""
    out = []
    ctx = click.Context(group, info_name=prefix)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        out.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            out += commands(command, f"{prefix} {name}")
    return out


def param_default(param: click.Parameter) -> str:
    default = param.default
    unset = default is None or repr(default).startswith("Sentinel")  # click's UNSET
    if unset or callable(default) or default == () or default is False:
        return ""
    if isinstance(param, click.Option) and param.is_flag and default is True:
        return "on"
    return f"`{default}`"


def param_type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        return " \\| ".join(f"`{c}`" for c in kind.choices)
    if isinstance(kind, click.IntRange | click.FloatRange):
        word = "integer" if isinstance(kind, click.IntRange) else "float"
        return f"{word}, `{kind._describe_range()}`"
    return kind.name.lower()


def param_names(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        return f"`{param.human_readable_name}`"
    names = [*param.opts, *param.secondary_opts]
    return ", ".join(f"`{n}`" for n in names)


def command_help(command: click.Command) -> str:
    """The command's help as Markdown paragraphs (click's ``\\b`` blocks kept verbatim)."""
    text = inspect.cleandoc(command.help or "")
    out = []
    for para in text.split("\n\n"):
        if para.startswith("\b"):
            body = para.split("\n", 1)[1] if "\n" in para else ""
            out.append("```text\n" + textwrap.dedent(body) + "\n```")
        else:
            out.append(" ".join(para.split()))
    return "\n\n".join(out)


def cli_page() -> str:
    from rnnlab.cli import main

    out = [
        "# Command line",
        "",
        "Every `rnnlab` command with its arguments and options, generated from the command",
        "line's own definitions (`rnnlab COMMAND --help` prints the same). Global options come",
        "before the command: `rnnlab --debug run ...` shows a traceback instead of the",
        "one-line message for an error.",
        "",
        "Exit status: 0 done, 2 a user error or a plugin's error (one message, no traceback),",
        "3 training diverged, 130 interrupted by Ctrl-C (143 by SIGTERM); `rnnlab compare`",
        "exits with 1 when a backend disagrees beyond tolerance.",
        "",
        "## `rnnlab`",
        "",
        command_help(main),
        "",
        *params_table(main),
    ]
    for path, command in commands(main, "rnnlab"):
        ctx = click.Context(command, info_name=path)
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += [f"## `{path}`", "", command_help(command), "", "```text", f"{path} {usage}", "```"]
        out += ["", *params_table(command)]
    return "\n".join(out)


def params_table(command: click.Command) -> list[str]:
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if not params:
        return []
    lines = ["| argument or option | type | default | meaning |", "|---|---|---|---|"]
    for p in params:
        doc = getattr(p, "help", None) or ""
        lines.append(f"| {param_names(p)} | {param_type(p)} | {param_default(p)} | {cell(doc)} |")
    return [*lines, ""]


def cli_options() -> set[str]:
    """Every command and option as ``"rnnlab run --set"`` (arguments as their NAME)."""
    from rnnlab.cli import main

    out = set()
    for path, command in [("rnnlab", main), *commands(main, "rnnlab")]:
        out.add(path)
        for p in command.params:
            if getattr(p, "hidden", False):
                continue
            names = p.opts + p.secondary_opts if isinstance(p, click.Option) else [p.name]
            out |= {f"{path} {n}" for n in names}
    return out


# -- the Python APIs ---------------------------------------------------------------------------
def python_names() -> list[str]:
    """``rnnlab.__all__`` as the names users write (``rnnlab.run``)."""
    import rnnlab

    return [f"rnnlab.{n}" for n in rnnlab.__all__ if n != "__version__"]


def plugin_names() -> list[str]:
    import rnnlab.plugin

    return [f"rnnlab.plugin.{n}" for n in rnnlab.plugin.__all__]


def testing_names() -> list[str]:
    """The functions rnnlab.testing defines whose names do not start with ``_``."""
    import rnnlab.testing as testing

    return [
        f"rnnlab.testing.{name}"
        for name, obj in vars(testing).items()
        if inspect.isfunction(obj) and obj.__module__ == testing.__name__ and name[0] != "_"
    ]


def defining_path(name: str) -> str:
    """Where mkdocstrings finds a public name: ``rnnlab.run`` -> ``rnnlab.api.run``; names of
    rnnlab.plugin and rnnlab.testing are documented under their public path."""
    import rnnlab

    owner, _, member = name.rpartition(".")
    if owner == "rnnlab" and member in getattr(rnnlab, "_PUBLIC", {}):
        return f"{rnnlab._PUBLIC[member]}.{member}"
    return name


def api_blocks(names: list[str]) -> list[str]:
    out = []
    for name in names:
        out += [f"## `{name}`", "", f"::: {defining_path(name)}", "    options:"]
        out += ["        show_root_heading: false", "        heading_level: 3", ""]
    return out


def python_api_page() -> str:
    return "\n".join(
        [
            "# Python API",
            "",
            "The names `import rnnlab` gives (`rnnlab.__all__`), from their docstrings.",
            "[Using rnnlab from Python](../python-api.md) shows them at work; the plugin",
            "author's names are in [Plugin API](plugin-api.md).",
            "",
            "`rnnlab.__version__` is the installed version, as a string.",
            "",
            *api_blocks(python_names()),
        ]
    )


def plugin_api_page() -> str:
    return "\n".join(
        [
            "# Plugin API",
            "",
            "Everything a plugin imports, from one module, `rnnlab.plugin`"
            " (`rnnlab.plugin.__all__`); names here keep their meaning across releases."
            " [Hooks](../hooks.md) lists the hooks a plugin implements;"
            " [Writing a plugin](../writing-plugins.md) walks through a task and a backend.",
            "",
            *api_blocks(plugin_names()),
        ]
    )


def testing_page() -> str:
    return "\n".join(
        [
            "# Conformance kit: `rnnlab.testing`",
            "",
            "The checks a plugin author runs in their own tests. `check_task` and `check_backend`"
            " run the others; the built-in plugins are tested with the same functions.",
            "",
            *api_blocks(testing_names()),
        ]
    )


PAGES = {
    "reference/experiment-file.md": experiment_page,
    "reference/cli.md": cli_page,
    "reference/python-api.md": python_api_page,
    "reference/plugin-api.md": plugin_api_page,
    "reference/testing.md": testing_page,
}
