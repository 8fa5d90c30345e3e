"""The package layout (docs/README.md): every import, also inside functions, points down the
order below, and no module imports a module that imports it back."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cellpick"
# Lowest first: a module may import only from its own layer or a lower one.
ORDER = ["errors", "vocab", "events", "_quiet", "config", "tracking", "data", "verdict", "models",
         "engine", "stages", "output", "pipeline", "cli", "__init__", "__main__"]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("cellpick"):
                found.update(f"{node.module}.{a.name}" if node.module == "cellpick" else node.module
                             for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}: relative import; write cellpick.<package>.<module>")
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("cellpick."))
        out[module.removesuffix(".__init__")] = found
    return out


def test_every_layer_is_named():
    layers = {_layer(m) for m in _imports()}
    assert layers <= set(ORDER), f"add {sorted(layers - set(ORDER))} to ORDER and docs/README.md"


def test_imports_point_down_the_layers():
    rank = {name: i for i, name in enumerate(ORDER)}
    upward = [f"{m} -> {t}" for m, targets in _imports().items() for t in targets
              if rank[_layer(t)] > rank[_layer(m)]]
    assert not upward, "imports that reach up: " + "; ".join(sorted(upward))


def test_no_import_cycles_between_modules():
    graph = _imports()
    names = set(graph)

    def resolve(target: str) -> str:
        while target not in names and "." in target:
            target = target.rsplit(".", 1)[0]
        return target

    edges = {m: {resolve(t) for t in ts} - {m} for m, ts in graph.items()}
    # a package's __init__ re-exporting its own modules is not a cycle
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                return path + [m, t]
            if not state.get(t) and (cycle := visit(t, path + [m])):
                return cycle
        state[m] = 2
        return None

    for m in sorted(edges):
        if not state.get(m):
            cycle = visit(m, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_test_files_mirror_the_packages_and_heavy_first_names_files_that_exist():
    """tests/<package>/test_*.py beside cellpick/<package>/; file stems are unique (pytest's
    default import mode needs it, and conftest.HEAVY_FIRST ranks files by stem), and
    HEAVY_FIRST names no file that was renamed or moved away."""
    from conftest import HEAVY_FIRST

    tests = Path(__file__).resolve().parent
    files = sorted(tests.rglob("test_*.py"))
    stems = [p.stem for p in files]
    assert len(stems) == len(set(stems)), sorted(s for s in stems if stems.count(s) > 1)
    folders = {p.parent.name for p in files if p.parent != tests}
    assert folders <= {p.name for p in PACKAGE.iterdir() if p.is_dir()} | {"e2e"}, folders
    assert len(HEAVY_FIRST) == len(set(HEAVY_FIRST))
    assert set(HEAVY_FIRST) <= set(stems), set(HEAVY_FIRST) - set(stems)
