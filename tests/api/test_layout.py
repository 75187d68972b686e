"""The core's shape, read from its source with ``ast``: short signatures, a few top-level
modules beside the sub-packages, and an import graph without a circle (imports inside functions
count too: a circle closed at call time is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import rnnlab

ROOT = Path(rnnlab.__file__).parent
MAX_PARAMETERS = 8
MAX_TOP_LEVEL_MODULES = 12


def modules() -> dict[str, Path]:
    """Every module of the core: dotted name -> file."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def parameter_count(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Every parameter, ``self``/``cls`` included; ``*args`` and ``**kwargs`` one each."""
    a = fn.args
    return (
        len(a.posonlyargs)
        + len(a.args)
        + len(a.kwonlyargs)
        + (a.vararg is not None)
        + (a.kwarg is not None)
    )


def numba_backend() -> list[Path]:
    """The numba backend's modules (the core's fast path; its tests excepted)."""
    folder = ROOT.parent / "plugins" / "rnnlab_numba"
    return [p for p in sorted(folder.rglob("*.py")) if "tests" not in p.parts]


def test_no_function_takes_more_than_eight_parameters():
    """The core and the numba backend: grouped arguments instead of long positional lists."""
    too_many = [
        f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}() takes {parameter_count(node)}"
        for path in [*modules().values(), *numba_backend()]
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and parameter_count(node) > MAX_PARAMETERS
    ]
    assert too_many == []


def test_few_top_level_modules():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The core's modules that module ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import sub` imports the module pkg.sub; `from mod import name`, mod
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import rnnlab.x.y` names rnnlab.x.y
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph``, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == GREY:
                return stack[stack.index(nxt) :] + [nxt]
            if colour[nxt] == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle():
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert cycle(graph) is None


def test_cycle_finder_finds_a_circle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


# rooms that must not reach into others: the store knows nothing of training, models or
# displays; reading an experiment needs no numeric model
FORBIDDEN = {
    "rnnlab.store": ("rnnlab.training", "rnnlab.nn", "rnnlab.display", "rnnlab.experiment"),
    "rnnlab.experiment": ("rnnlab.nn", "rnnlab.training"),
}


def test_rooms_import_nothing_above_them():
    known = modules()
    wrong = [
        f"{name} imports {target}"
        for name, path in known.items()
        for room, above in FORBIDDEN.items()
        if name == room or name.startswith(room + ".")
        for target in imported(name, path, known)
        if target.startswith(above)
    ]
    assert wrong == []
