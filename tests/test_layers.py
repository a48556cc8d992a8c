"""The package's layers (docs/ARCHITECTURE.md): a module imports only from its own layer or the
layers below, there are no import circles, and presentation libraries stay in the CLI.

Every import counts, also one inside a function: hiding an import in a function does not make
an upward dependency go away.
"""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zoo_ensemble"
ARCHITECTURE_DOC = PACKAGE.parent / "docs" / "ARCHITECTURE.md"

def _layers_from_doc(page: str) -> list[tuple[str, list[str]]]:
    """The layer table of docs/ARCHITECTURE.md, lowest first: each row's name and the module
    patterns it names in backticks (the package's ``__init__`` is the pattern "")."""
    rows = re.findall(r"^\| ([a-z ]+) \| ((?:`[^`]+`(?:, )?|the package's `__init__`)+) \|", page, re.M)
    return [(name, ["" if m == "__init__" else m for m in re.findall(r"`([^`]+)`", cells)]) for name, cells in rows]


#: Lowest first; docs/ARCHITECTURE.md is the one place they are written down.
LAYERS: list[tuple[str, list[str]]] = _layers_from_doc(ARCHITECTURE_DOC.read_text(encoding="utf-8"))

#: Libraries that draw for people: only the interface layer uses them.
PRESENTATION = ("rich", "typer")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The package module an absolute import name falls in (None outside the package)."""
    if name != "zoo_ensemble" and not name.startswith("zoo_ensemble."):
        return None
    rel = name[len("zoo_ensemble.") :] if "." in name else ""
    while rel and rel not in MODULES:
        rel = rel.rpartition(".")[0]
    return rel


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(package modules ``module`` imports, top-level outside packages it imports)."""
    path = MODULES[module]
    return _imports_in(path.read_text(), module, path.name == "__init__.py")


def _imports_in(source: str, module: str, is_package: bool) -> tuple[set[str], set[str]]:
    package = module.split(".") if is_package else module.split(".")[:-1]
    package = [p for p in package if p]
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                owner = _owner(alias.name)
                inside.add(owner) if owner is not None else outside.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(["zoo_ensemble", *package[: len(package) - node.level + 1], *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if _owner(base) is None:
                outside.add(base.split(".")[0])
                continue
            for alias in node.names:  # "from . import x" may name a submodule
                inside.add(_owner(f"{base}.{alias.name}"))
    inside.discard(module)
    return inside, outside


def _layer(module: str) -> int | None:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch(module, p) for p in patterns if p != "") or (module == "" and "" in patterns):
            return index
    return None


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if _layer(m) is None]
    assert not unplaced, f"place these modules in a layer (tests/test_layers.py, docs/ARCHITECTURE.md): {unplaced}"


def _graph() -> dict[str, set[str]]:
    return {m: _imports(m)[0] for m in MODULES}


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m or 'zoo_ensemble'} ({LAYERS[_layer(m)][0]}) -> {t} ({LAYERS[_layer(t)][0]})"
        for m, targets in graph.items() for t in targets if _layer(t) > _layer(m)
    )


def test_no_module_imports_from_a_layer_above_it():
    upward = _upward(_graph())
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_there_are_no_import_circles():
    circles = _strongly_connected(_graph())
    assert not circles, f"import circles: {circles}"


def test_a_planted_upward_import_and_a_planted_circle_are_found():
    """The checks themselves: an import inside a function that runs up, and two modules that
    import each other, planted into the real graph, are each named."""
    graph = _graph()
    planted = _imports_in("def f():\n    from ..cli import main\n", "dicom.series", False)[0]
    assert planted == {"cli"}
    assert "dicom.series (volumes and data) -> cli (interface)" in _upward({**graph, "dicom.series": graph["dicom.series"] | planted})
    circled = {**graph, "organs": graph["organs"] | {"labelmaps"}, "labelmaps": graph["labelmaps"] | {"organs"}}
    assert any({"organs", "labelmaps"} <= set(group) for group in _strongly_connected(circled))


def test_presentation_stays_in_the_interface():
    interface = LAYERS.index(next(layer for layer in LAYERS if layer[0] == "interface"))
    offenders = [
        f"{m} imports {lib}"
        for m in MODULES
        if _layer(m) != interface
        for lib in _imports(m)[1] & set(PRESENTATION)
    ]
    assert not offenders, offenders


def test_the_architecture_page_states_the_layers():
    names = [name for name, _ in LAYERS]
    assert names == ["foundation", "plugin core", "vocabulary", "volumes and data", "networks and training", "model zoo", "workflows", "interface"]
    assert all(patterns for _, patterns in LAYERS) and "" in LAYERS[-1][1]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other (size > 1 or self-loops)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize(
    ("graph", "circles"),
    [({"a": {"b"}, "b": {"c"}, "c": set()}, []), ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]])],
)
def test_the_circle_finder_finds_circles(graph, circles):
    assert _strongly_connected(graph) == circles


def test_the_import_reader_sees_imports_inside_functions(tmp_path, monkeypatch):
    fake = tmp_path / "zoo_ensemble"
    (fake / "sub").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "low.py").write_text("")
    (fake / "sub" / "__init__.py").write_text("")
    (fake / "sub" / "high.py").write_text("def f():\n    from ..low import x\n    from . import other\n    import rich.table\n")
    (fake / "sub" / "other.py").write_text("")
    monkeypatch.setitem(globals(), "MODULES", {
        "": fake / "__init__.py", "low": fake / "low.py", "sub": fake / "sub" / "__init__.py",
        "sub.high": fake / "sub" / "high.py", "sub.other": fake / "sub" / "other.py",
    })
    assert _imports("sub.high") == ({"low", "sub.other"}, {"rich"})
