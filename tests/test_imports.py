"""The shape of core/'s imports: no cycles, no reaching into another module's private names, and
no Streamlit. Imports inside functions count too: a lazy import hides a cycle from Python, not
from a reader."""
import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def imports() -> dict[str, list[tuple[str, list[str]]]]:
    """core module -> (core module it imports, names taken from it), from the source text."""
    graph: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(CORE.glob("*.py")):
        edges = graph.setdefault(path.stem, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 1 and module:
                    edges.append((module.split(".")[0], [a.name for a in node.names]))
                elif node.level == 1:  # from . import models
                    edges += [(a.name, []) for a in node.names]
                elif module.startswith("core."):
                    edges.append((module.split(".")[1], [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                edges += [(a.name.split(".")[1], []) for a in node.names if a.name.startswith("core.")]
    return graph


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """One cycle as a path that ends where it starts, or [] when there is none."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = "open"
        path.append(module)
        for target in graph.get(module, []):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        path.pop()
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) == []


def test_core_has_no_import_cycles():
    graph = {module: sorted({target for target, _ in edges if target != module})
             for module, edges in imports().items()}
    assert "evaluate" in graph and "beir" in graph["cli"]  # the walk sees lazy imports too
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " → ".join(cycle)


def test_no_module_imports_another_ones_private_names():
    private = [f"{module} takes {name} from {target}" for module, edges in imports().items()
               for target, names in edges for name in names
               if name.startswith("_") and not name.startswith("__")]
    assert not private, "; ".join(private)


def test_core_never_imports_streamlit():
    offenders = [path.name for path in CORE.glob("*.py")
                 if any(isinstance(n, (ast.Import, ast.ImportFrom))
                        and any("streamlit" in (getattr(n, "module", None) or a.name) for a in n.names)
                        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert not offenders
