"""Mutation testing of the modules that decide or verify (not run in CI: it takes minutes per module).

    python benchmarks/mutation.py --module gate          # or bank, manifest, noise, all; --json out.json
    python benchmarks/mutation.py --module noise --list  # the mutants, numbered
    python benchmarks/mutation.py --module bank --only 18,33
    # the suite of another commit, with its own tests (a "before" figure):
    python benchmarks/mutation.py --module bank --rev <commit> --tests-rev <commit> \
        --tests tests/runtime/test_runtime.py tests/test_reliability.py -k "bank or blend"

Each mutant flips one thing in a copy of the module's source (a comparison, an arithmetic or boolean
operator, a numeric/string/bool constant, min/max, numpy argmax/argmin, a `not`, a return value; not
docstrings, annotations, f-strings or the messages of raise statements) and runs the module's tests
against it; a mutant the tests do not fail "survives". A run exceeding --timeout counts as killed.

Everything runs in a snapshot (a temporary copy of edge_t2i/, convert/, calib/, tests/, pyproject.toml):
the checkout is never modified, and edits others make in it during a run change nothing. In the test
process an import hook maps edge_t2i, edge_t2i.convert and edge_t2i.calib to the snapshot (as the
editable install maps them to the checkout) and the module under test to the mutant's file. The
session's tiny pack (tests/conftest.py::pack_dir, ~10 s to convert) is built once with the unmutated
library and copied by every mutant's run.

Why not mutmut 3: it names mutants by file path (convert/gate.py -> "convert.gate") and only
activates those whose function's __module__ matches, so edge_t2i.convert.gate is never mutated;
it also skips module-level and class-level code (the gate's thresholds are dataclass defaults)
and writes a mutants/ copy into the shared checkout. cosmic-ray mutates the files in place.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.abc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> (source file, import name, tests to run against each mutant)
# module -> (source file, import name, tests run against each mutant: the module's unit tests, and the
# fuzz tests of test_reliability.py that feed it)
MODULES: dict[str, tuple[str, str, list[str]]] = {
    "gate": ("convert/gate.py", "edge_t2i.convert.gate",
             ["tests/convert/test_gate.py", "tests/convert/test_convert.py::test_gate_checks_each_attribute_not_only_all"]),
    "bank": ("edge_t2i/runtime/bank.py", "edge_t2i.runtime.bank",
             ["tests/runtime/test_bank.py", "tests/test_reliability.py", "-k", "bank or slerp or blend or npz"]),
    "manifest": ("edge_t2i/runtime/manifest.py", "edge_t2i.runtime.manifest",
                 ["tests/runtime/test_manifest.py", "tests/test_reliability.py", "-k", "manifest or is_pack"]),
    "noise": ("edge_t2i/runtime/noise.py", "edge_t2i.runtime.noise", ["tests/runtime/test_noise.py"]),
}
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0", "-W", "ignore"]

_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BINARY = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
           ast.Mod: ast.Div, ast.Pow: ast.Mult, ast.MatMult: ast.Mult, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr}
_NAMES = {"min": "max", "max": "min", "any": "all", "all": "any"}  # builtins
_ATTRS = {"argmax": "argmin", "argmin": "argmax", "maximum": "minimum", "minimum": "maximum"}  # numpy


@dataclass(frozen=True)
class Mutant:
    index: int
    line: int
    what: str


class Mutator(ast.NodeTransformer):
    """Counts the mutation points of a module in a fixed order; with `target`, applies that one."""

    def __init__(self, target: int | None = None):
        self.target = target
        self.found: list[Mutant] = []
        self._skip_constants = 0  # inside a raise (messages) or a Literal[...] (typing only)

    def _point(self, node: ast.AST, what: str) -> bool:
        index = len(self.found)
        self.found.append(Mutant(index, getattr(node, "lineno", 0), what))
        return index == self.target

    # -- things never mutated: annotations, docstrings, messages, f-string text ---------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.body = self._body(node.body)
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [d if d is None else self.visit(d) for d in node.args.kw_defaults]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = self._body(node.body)
        return node

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = self._body(node.body)
        return node

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out = []
        for i, stmt in enumerate(body):
            is_doc = i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str)
            if is_doc or isinstance(stmt, (ast.Import, ast.ImportFrom)):
                out.append(stmt)
                continue
            new = self.visit(stmt)
            out.extend(new if isinstance(new, list) else [new])
        return out

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # f-strings are messages

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        self._skip_constants += 1
        self.generic_visit(node)
        self._skip_constants -= 1
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "Literal":
            return node
        return self.generic_visit(node)

    # -- mutation points --------------------------------------------------------------------
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            new = _COMPARE.get(type(op))
            if new and self._point(node, f"{type(op).__name__} -> {new.__name__}"):
                node.ops[i] = new()
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        new = _BINARY.get(type(node.op))
        if new and self._point(node, f"{type(node.op).__name__} -> {new.__name__}"):
            node.op = new()
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        new = _BINARY.get(type(node.op))
        if new and self._point(node, f"{type(node.op).__name__}= -> {new.__name__}="):
            node.op = new()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._point(node, f"{type(node.op).__name__} -> {new.__name__}"):
            node.op = new()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, (ast.Not, ast.USub)) and self._point(node, f"drop {type(node.op).__name__}"):
            return node.operand
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _NAMES and self._point(node, f"{node.id} -> {_NAMES[node.id]}"):
            return ast.copy_location(ast.Name(_NAMES[node.id], node.ctx), node)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr in _ATTRS and self._point(node, f".{node.attr} -> .{_ATTRS[node.attr]}"):
            node.attr = _ATTRS[node.attr]
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None) \
                and self._point(node, "return None"):
            node.value = ast.Constant(None)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        v = node.value
        if self._skip_constants or v is None or v is Ellipsis:
            return node
        if isinstance(v, bool):
            new, what = (not v), f"{v} -> {not v}"
        elif isinstance(v, (int, float)):
            new, what = v + 1, f"{v!r} -> {v + 1!r}"
        elif isinstance(v, str):
            new, what = f"XX{v}XX", f"{v!r} -> 'XX..XX'"
        else:
            return node
        if self._point(node, what):
            return ast.copy_location(ast.Constant(new), node)
        return node


def mutants(source: str) -> list[Mutant]:
    m = Mutator()
    m.visit(ast.parse(source))
    return m.found


def mutated_source(source: str, index: int | None) -> str:
    tree = ast.parse(source)
    if index is not None:
        m = Mutator(index)
        tree = m.visit(copy.deepcopy(tree))
    return ast.unparse(ast.fix_missing_locations(tree))


# -- the tree the tests run in: a snapshot, so edits made in the checkout during a run change nothing -----
LIBRARY = ["edge_t2i", "convert", "calib"]


def snapshot(root: Path, rev: str | None, tests_rev: str | None) -> None:
    """Copy the library (from git `rev`, else the working tree) and tests/ + pyproject.toml (from `tests_rev`,
    else the working tree) into `root`."""
    def take(paths: list[str], from_rev: str | None) -> None:
        if from_rev:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", from_rev, *paths], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        else:
            for rel in paths:
                src = ROOT / rel
                if src.is_dir():
                    shutil.copytree(src, root / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(src, root / rel)

    take(LIBRARY, rev)
    take(["tests", "pyproject.toml"], tests_rev)
    with open(root / "tests" / "conftest.py", "a", encoding="utf-8") as fh:
        fh.write(REUSE_PACK)
    (root / "tests" / "test_zz_mutation_build_pack.py").write_text(BUILD_PACK, encoding="utf-8")


# The session's tiny pack takes ~10 s to convert: build it once with the unmutated library, then let
# every mutant's run copy it (appended to the snapshot's conftest.py; the checkout's is never touched).
REUSE_PACK = """

# ---- added by benchmarks/mutation.py (in its snapshot only) ----
if os.environ.get("MUTATION_PACK_DIR"):
    @pytest.fixture(scope="session")
    def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
        import shutil

        out = tmp_path_factory.mktemp("pack") / "tiny"
        shutil.copytree(os.environ["MUTATION_PACK_DIR"], out)
        return out
"""
BUILD_PACK = """import os
import shutil


def test_build_pack(pack_dir):
    shutil.copytree(pack_dir, os.environ["MUTATION_PACK_OUT"])
"""


# -- the test process: the snapshot's packages, the mutant in place of its module, then pytest ---------------
class _Redirect(importlib.abc.MetaPathFinder):
    """Import `edge_t2i`, `edge_t2i.convert`, `edge_t2i.calib` from the snapshot (as the editable install
    maps them in the checkout) and the module under test from the mutant's file."""

    def __init__(self, root: str, name: str, path: str):
        self.packages = {"edge_t2i": Path(root) / "edge_t2i", "edge_t2i.convert": Path(root) / "convert",
                         "edge_t2i.calib": Path(root) / "calib"}
        self.name, self.path = name, path

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        if fullname == self.name:
            return importlib.util.spec_from_file_location(fullname, self.path)
        if fullname in self.packages:
            init = self.packages[fullname] / "__init__.py"
            return importlib.util.spec_from_file_location(fullname, init,
                                                          submodule_search_locations=[str(init.parent)])
        return None


def child(root: str, name: str, path: str, pytest_args: list[str]) -> int:
    import pytest

    sys.dont_write_bytecode = True
    sys.path.insert(0, root)
    sys.meta_path.insert(0, _Redirect(root, name, path))
    return int(pytest.main(pytest_args))


def run_one(name: str, source: str, index: int | None, tests: list[str], timeout: float, root: Path,
            extra_env: dict[str, str] | None = None) -> str:
    path = root / f"mutant_{'base' if index is None else index}.py"
    path.write_text(mutated_source(source, index), encoding="utf-8")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(root), name, str(path), "--",
           *PYTEST_ARGS, *tests]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "MUTATION_PACK_DIR": str(root / "_pack"), **(extra_env or {})}
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"  # counted as killed: the tests did not pass
    finally:
        path.unlink(missing_ok=True)
    if proc.returncode == 0:
        return "survived"
    if proc.returncode == 1:
        return "killed"
    if proc.returncode == 5:
        return "no tests"
    return f"error rc={proc.returncode}: {proc.stdout[-400:]}{proc.stderr[-400:]}"


def measure(module: str, tests: list[str], timeout: float | None, only: list[int] | None, rev: str | None,
            tests_rev: str | None) -> dict:
    rel, name, default_tests = MODULES[module]
    tests = tests or default_tests
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        root = Path(tmp)
        snapshot(root, rev, tests_rev)
        source = (root / rel).read_text(encoding="utf-8")
        found = mutants(source)
        lines = source.splitlines()
        built = run_one(name, source, None, ["tests/test_zz_mutation_build_pack.py"], 600, root,
                        {"MUTATION_PACK_DIR": "", "MUTATION_PACK_OUT": str(root / "_pack")})
        if built != "survived":
            raise SystemExit(f"{module}: could not build the tiny pack ({built})")
        t0 = time.perf_counter()
        base = run_one(name, source, None, tests, timeout or 600, root)
        if base != "survived":
            raise SystemExit(f"{module}: the tests fail on the unmutated module ({base}): fix that first")
        per_run = time.perf_counter() - t0
        timeout = timeout or max(30.0, 10 * per_run)  # mutants that loop forever (noise's rejection loop)
        print(f"{module}: {len(found)} mutants of {rel} (library {rev or 'working tree'}, tests "
              f"{tests_rev or 'working tree'}): {' '.join(tests)} (~{per_run:.1f} s each)", flush=True)
        results = []
        for m in found:
            if only and m.index not in only:
                continue
            status = run_one(name, source, m.index, tests, timeout, root)
            results.append({"index": m.index, "line": m.line, "what": m.what, "status": status,
                            "code": lines[m.line - 1].strip() if 0 < m.line <= len(lines) else ""})
            if status != "killed":
                print(f"  #{m.index} line {m.line}: {m.what}: {status}   | {results[-1]['code']}", flush=True)
    killed = sum(r["status"] in ("killed", "timeout") for r in results)
    print(f"{module}: {killed}/{len(results)} killed ({killed / max(1, len(results)):.0%})", flush=True)
    return {"module": module, "file": rel, "library": rev or "working tree", "tests_from": tests_rev or "working tree",
            "tests": tests, "killed": killed, "total": len(results), "mutants": results}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv[1], argv[2], argv[3], argv[5:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--module", required=True, choices=[*MODULES, "all"])
    p.add_argument("--tests", nargs=argparse.REMAINDER, default=[],
                   help="pytest arguments (files, -k ...) instead of the module's default tests; put it last")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per mutant before it counts as killed (default: 10x the unmutated run, at least 30)")
    p.add_argument("--only", type=lambda s: [int(x) for x in s.split(",")], help="mutant indices, e.g. 3,17")
    p.add_argument("--rev", help="take the library from this git revision (default: the working tree)")
    p.add_argument("--tests-rev", help="take tests/ from this git revision (default: the working tree)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args(argv)
    modules = list(MODULES) if a.module == "all" else [a.module]
    if a.list:
        for module in modules:
            source = (ROOT / MODULES[module][0]).read_text(encoding="utf-8")
            for m in mutants(source):
                print(f"{module} #{m.index} line {m.line}: {m.what}")
        return 0
    report = [measure(m, a.tests, a.timeout, a.only, a.rev, a.tests_rev) for m in modules]
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if all(r["killed"] == r["total"] for r in report) else 1


if __name__ == "__main__":
    sys.exit(main())
