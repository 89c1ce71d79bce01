"""The package's layers run one way: cli → build → stages → reading / knowledge → core (every import counted,
function-level ones too), and no two modules import each other round a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "datakit"
STAGES = {"ingest", "retrieve", "annotate", "validate", "export", "review", "finetune", "evaluate"}
DOMAIN = {"reading", "knowledge"}
# the orchestrator runs the stages in order; only the CLI stands above it
ORCHESTRATION = {"build", "pipeline"}


def layer(module: str) -> int:
    """0 core, 1 reading / knowledge, 2 a stage, 3 the orchestrator, 4 the CLI."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top == "cli" or top == "__main__":
        return 4
    if top in ORCHESTRATION:
        return 3
    if top in STAGES:
        return 2
    if top in DOMAIN:
        return 1
    return 0


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every datakit module ``path`` imports, wherever the import statement is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("datakit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("datakit"):
                # `from datakit.x import y` names a submodule y, or a name defined in datakit.x itself
                folder = PACKAGE.parent / mod.replace(".", "/")
                subs = {a.name for a in node.names if (folder / f"{a.name}.py").is_file()
                        or (folder / a.name / "__init__.py").is_file()}
                out |= {f"{mod}.{n}" for n in subs}
                if len(subs) < len(node.names):
                    out.add(mod)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in sorted(edges.items()):
        for target in sorted(targets):
            if layer(target) > layer(mod):
                bad.append(f"{mod} (layer {layer(mod)}) imports {target} (layer {layer(target)})")
            elif layer(target) == layer(mod) == 2 and target.split(".")[1] != mod.split(".")[1]:
                bad.append(f"stage {mod} imports another stage's {target}")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_imports_run_down_the_layers():
    assert violations(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_an_upward_import_is_caught():
    edges = graph()
    edges["datakit.reading.labeler"] = edges["datakit.reading.labeler"] | {"datakit.validate"}
    assert violations(edges) == [
        "datakit.reading.labeler (layer 1) imports datakit.validate (layer 2)"
    ]
