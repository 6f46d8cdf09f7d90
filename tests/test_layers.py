"""The package's shape: at most twelve entries, imports pointing only down the layers, no import cycle
(function-level imports included: a lazy import is still an arrow)."""

from __future__ import annotations

import ast
from pathlib import Path

import transfersep

PKG = Path(transfersep.__file__).resolve().parent
# low to high; a module may import its own layer (inside its package) or any lower one
LAYERS = [
    {"files"},
    {"audio"},
    {"model", "data"},
    {"evaluation", "inference"},
    {"run"},
    {"study"},
    {"report"},
    {"demo"},
    {"bench"},
    {"cli"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``transfersep...`` module a file imports, at any depth of its code."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("transfersep")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("transfersep"):
            for a in node.names:  # `from transfersep.run import errors` imports the module run.errors
                sub = f"{node.module}.{a.name}"
                is_module = (PKG.parent / Path(*sub.split("."))).with_suffix(".py").is_file()
                out.add(sub if is_module or (PKG.parent / Path(*sub.split("."))).is_dir() else node.module)
    return out


def _graph() -> dict[str, set[str]]:
    files = [p for p in PKG.rglob("*.py") if "conf" not in p.relative_to(PKG).parts]
    graph = {_module_name(p): _imports(p) for p in files}
    graph["transfersep"] = set()  # the facade's lazy `load_model` is the API's door, not a dependency
    return graph


def _entry(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_at_most_twelve_entries() -> None:
    entries = [p.name for p in PKG.iterdir() if p.name not in ("__init__.py", "__pycache__")]
    assert len(entries) <= 12, sorted(entries)
    assert {e.removesuffix(".py") for e in entries} <= set(LEVEL), "a new entry needs a place in LAYERS"


def test_imports_point_only_down() -> None:
    upward = []
    for mod, targets in _graph().items():
        src = _entry(mod)
        for t in targets:
            dst = _entry(t)
            if src is None or dst is None or src == dst:
                continue
            if LEVEL[dst] >= LEVEL[src]:
                upward.append(f"{mod} -> {t}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if t not in graph:
                continue
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_checks_see_an_upward_import(tmp_path: Path) -> None:
    """The parser finds lazy imports and `from package import module` forms (else the checks above pass
    vacuously)."""
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from transfersep.run import lifecycle\n    import transfersep.study.grid\n")
    assert _imports(f) == {"transfersep.run.lifecycle", "transfersep.study.grid"}
