"""The package's shape: one folder per stage, imports only from earlier stages, no cycles, a torch-free runtime.

Read from the source (AST), so it also sees imports inside functions, which run only later.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The order imports may follow (a stage imports from itself and the stages before it). The runtime comes
# before eval/train/convert because they build on it (the gate renders through its backends, convert
# writes its pack format); its torch backend reaches back to `models` only lazily (checked below).
STAGES = ("core", "data", "models", "runtime", "eval", "train", "calib", "convert", "bench", "cli")
CORE = {"edge_t2i.errors", "edge_t2i._io", "edge_t2i.imaging", "edge_t2i.progress"}
FACADES = {"edge_t2i": {"core", "runtime"}, "edge_t2i.__main__": {"cli"}}  # the public API and `python -m`
TORCH_BACKEND = "edge_t2i.runtime.backends.torch"
HEAVY = ("torch", "safetensors", "sentence_transformers", "transformers", "onnx", "onnxscript")


def module_files() -> dict[str, Path]:
    """Installed module name -> source file (convert/ and calib/ install as edge_t2i.convert / .calib)."""
    out = {}
    for top, prefix in (("edge_t2i", "edge_t2i"), ("convert", "edge_t2i.convert"), ("calib", "edge_t2i.calib")):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT / top).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


MODULES = module_files()


def stage(module: str) -> str:
    if module == "edge_t2i.__main__":
        return "cli"
    if module in CORE:
        return "core"
    return module.split(".")[1] if module.count(".") >= 1 else "core"


def imports(path: Path) -> list[tuple[str, bool, bool]]:
    """(imported module, inside a function, under `if TYPE_CHECKING`) for every import statement."""
    found: list[tuple[str, bool, bool]] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            lazy = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            checking = type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function, type_checking) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for a in child.names:  # `from pkg import submodule` imports the submodule
                    sub = f"{child.module}.{a.name}"
                    found.append((sub if sub in MODULES else child.module, in_function, type_checking))
            visit(child, lazy, checking)

    visit(ast.parse(path.read_text(encoding="utf-8")), False, False)
    return found


def test_every_module_belongs_to_a_known_stage():
    assert {stage(m) for m in MODULES} <= set(STAGES)
    for name in ("data", "models", "train", "eval", "runtime", "bench", "cli", "convert", "calib"):
        assert any(stage(m) == name for m in MODULES), f"no module in stage {name}"


def test_stages_import_only_from_themselves_and_earlier_stages():
    bad = []
    for module, path in MODULES.items():
        allowed = FACADES.get(module) or set(STAGES[: STAGES.index(stage(module)) + 1])
        for target, _, type_checking in imports(path):
            if target.startswith("edge_t2i") and not type_checking and stage(target) not in allowed:
                bad.append(f"{module} imports {target}")
    assert not bad, "\n".join(bad)


def test_the_runtime_never_imports_torch_or_training_code():
    """Runtime modules import no heavy library and nothing from models/train; the torch backend only
    inside its constructor, so `import edge_t2i` and a pack's inference stay torch-free."""
    bad = []
    for module, path in MODULES.items():
        if stage(module) not in ("runtime", "core", "data") and module != "edge_t2i":
            continue
        for target, lazy, _ in imports(path):
            heavy = target.split(".")[0] in HEAVY or stage(target) in ("models", "train") \
                and target.startswith("edge_t2i.")
            if heavy and not (module == TORCH_BACKEND and lazy):
                bad.append(f"{module} imports {target}{' (lazily)' if lazy else ''}")
    assert not bad, "\n".join(bad)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_no_import_cycles():
    graph = {m: {t for t, _, checking in imports(p) if t in MODULES and t != m and not checking}
             for m, p in MODULES.items()}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_modules_hold_one_idea():
    """No module over 600 lines (STYLE.md)."""
    lines = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert max(lines.values()) <= 600, sorted(lines.items(), key=lambda kv: -kv[1])[:3]


def test_functions_are_short_enough_to_read_at_once():
    """No function body over 60 lines (STYLE.md: functions short enough to read at once)."""
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, "\n".join(long)


def test_installed_top_level_name_is_only_edge_t2i():
    """pyproject maps convert/ and calib/ into edge_t2i: no package claims `convert` or `calib`."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {p.split(".")[0] for p in tool["packages"]} == {"edge_t2i"}
    assert tool["package-dir"] == {"edge_t2i": "edge_t2i", "edge_t2i.convert": "convert", "edge_t2i.calib": "calib"}
    on_disk = {m for m in MODULES if (MODULES[m].name == "__init__.py")}
    assert on_disk == set(tool["packages"]), on_disk ^ set(tool["packages"])
