"""The shape of core/'s imports: no cycles, layers that only look down, no reaching into another
module's private names, no Streamlit in core, no CLI in the pages, and no SQL in core outside the store. Imports inside functions
count too: a lazy import hides a cycle from Python, not from a reader."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
# core's subpackages, lowest first: a module may import its own layer and the ones before it.
LAYERS = ("workspace", "measuring", "documents", "training", "using", "deciding")


def module_name(path: Path) -> str:
    """``core/training/train.py`` -> ``core.training.train``."""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def import_edges(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import of core in one file, lazy ones too."""
    package = module_name(path).rsplit(".", 1)[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against the file's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{module}" if module else base
            if not module.startswith("core"):
                continue
            names = [a.name for a in node.names]
            submodules = [f"{module}.{n}" for n in names if (CORE.parent / f"{module}.{n}".replace(".", "/")).with_suffix(".py").exists()]
            edges += [(m, []) for m in submodules] or [(module, names)]
        elif isinstance(node, ast.Import):
            edges += [(a.name, []) for a in node.names if a.name.startswith("core")]
    return edges


def imports() -> dict[str, list[tuple[str, list[str]]]]:
    """core module -> (core module it imports, names taken from it), from the source text."""
    return {module_name(path): import_edges(path) for path in sorted(CORE.rglob("*.py"))}


def layer(module: str) -> int | None:
    """A core module's layer (its place in LAYERS), or None for core itself and the CLI on top."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


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
    assert "core.documents.beir" in graph["core.cli.corpus"]  # the walk sees lazy imports too
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " → ".join(cycle)


def test_every_core_module_lives_in_a_layer():
    loose = [m for m in imports() if layer(m) is None and m not in ("core", "core.__main__")
             and m.partition(".")[2].partition(".")[0] != "cli"]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


def test_a_layer_never_imports_a_higher_one():
    assert layer("core.workspace.store") == 0 and layer("core.deciding.compare") == len(LAYERS) - 1
    upward = [f"{module} ({LAYERS[layer(module)]}) imports {target} ({LAYERS[layer(target)]})"
              for module, edges in imports().items() if layer(module) is not None
              for target, _ in edges if layer(target) is not None and layer(target) > layer(module)]
    assert not upward, "; ".join(upward)


def test_no_module_imports_another_ones_private_names():
    private = [f"{module} takes {name} from {target}" for module, edges in imports().items()
               for target, names in edges for name in names
               if name.startswith("_") and not name.startswith("__")]
    assert not private, "; ".join(private)


def test_core_never_imports_streamlit():
    offenders = [path.name for path in CORE.rglob("*.py")
                 if any(isinstance(n, (ast.Import, ast.ImportFrom))
                        and any("streamlit" in (getattr(n, "module", None) or a.name) for a in n.names)
                        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert not offenders


def test_pages_never_import_the_cli():
    """A page submits work through core's functions; building a command line is the CLI's job."""
    offenders = [f"{path.name}" for path in [ROOT / "app.py", *sorted((ROOT / "views").glob("*.py"))]
                 if any(target == "core.cli" or target.startswith("core.cli.") for target, _ in import_edges(path))]
    assert not offenders, f"pages that import core.cli: {offenders}"


STORE = CORE / "workspace" / "store"
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|CREATE|ALTER TABLE|DROP TABLE|PRAGMA)\b")
RAW = ("db", "execute", "executemany", "executescript", "query")  # a connection, or a statement run


def sql_outside(core: Path, store: Path) -> list[str]:
    """``file:line`` of every SQL text, or use of a connection or ``Store.query``, in ``core``
    outside ``store``: every statement is a named method of the store (core/workspace/store/),
    so a table's statements are in one place and a schema change finds them all."""
    found = []
    for path in sorted(core.rglob("*.py")):
        if path.is_relative_to(store):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                found.append(f"{path.relative_to(core.parent)}:{node.lineno} {SQL.search(node.value)[0]}")
            elif isinstance(node, ast.Attribute) and node.attr in RAW:
                found.append(f"{path.relative_to(core.parent)}:{node.lineno} .{node.attr}")
    return found


def test_the_sql_finder_finds_sql(tmp_path):
    (tmp_path / "core" / "store").mkdir(parents=True)
    (tmp_path / "core" / "store" / "rows.py").write_text('db.execute("SELECT 1")\n')
    (tmp_path / "core" / "jobs.py").write_text('x = 1\nrows = store.query(f"SELECT * FROM {t}")\n'
                                              'store.db.execute("DELETE FROM jobs")\n')
    assert sorted(sql_outside(tmp_path / "core", tmp_path / "core" / "store")) == [
        "core/jobs.py:2 .query", "core/jobs.py:2 SELECT", "core/jobs.py:3 .db", "core/jobs.py:3 .execute",
        "core/jobs.py:3 DELETE FROM"]


def test_sql_lives_only_in_the_store():
    offenders = sql_outside(CORE, STORE)
    assert not offenders, ("SQL outside core/workspace/store/ (give it a named method there): "
                           + "; ".join(offenders))
