"""The import rules that import-linter (the contracts in ``pyproject.toml``) cannot check, and
a pin for each import kept lazy to save import time.

- A function-level import says why it is not at the top of its module, in a one-line comment
  that starts with ``# (``, on the import or on the comment lines right above it (or above
  the block of imports it belongs to): an optional extra, or a measured saving, such as
  ``# (lazy: ~9 ms of import wfkit; only running needs it)``. Dodging an import cycle is not
  a reason: the import goes to the top, and the cycle is broken instead.
- ``src`` never writes ``from wfkit import <submodule>``: import-linter reads it as an
  import of the root package, which imports everything, and reports chains that do not exist.
- Each import kept lazy for its cost has a test here that fails when it is made eager.

What ``import wfkit`` and the pytest plugin must not load from outside wfkit (pytest,
hypothesis, freezegun, asyncio, pydantic, sqlite3...) is pinned in ``test_import.py``;
what importing the cache policies must not load, in ``tests/unit/test_cache_policies.py``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "wfkit"

# Files whose function-level imports have not been given their reason yet (their slices of
# issue 11 rework these modules). Remove a file once it passes; the test says when.
NOT_YET_EXPLAINED: set[str] = set()
# Files that still write ``from wfkit import <submodule>`` (same arrangement).
NOT_YET_DIRECT: set[str] = set()


# -- the source rules ------------------------------------------------------------------------
def _sources() -> dict[str, ast.Module]:
    return {
        path.relative_to(SRC).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def unexplained_imports(source: str, tree: ast.Module) -> list[str]:
    """The function-level imports in a module (outside ``if TYPE_CHECKING:``) that carry no
    ``# (`` reason, as ``"line N: <statement>"``."""
    lines = source.splitlines()
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    import_lines = {i for n in imports for i in range(n.lineno, (n.end_lineno or n.lineno) + 1)}
    in_functions = {
        node.lineno: node
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    skipped = _type_checking_lines(tree)
    found = []
    for lineno, node in sorted(in_functions.items()):
        if lineno in skipped:
            continue
        said = lines[lineno - 1 : node.end_lineno]
        above = lineno - 2  # index of the line above
        while above >= 0 and (lines[above].lstrip().startswith("#") or above + 1 in import_lines):
            said.append(lines[above])
            above -= 1
        if not any("# (" in line for line in said):
            found.append(f"line {lineno}: {ast.unparse(node)}")
    return found


def test_every_function_level_import_says_why() -> None:
    unexplained = {
        name: found
        for name, tree in _sources().items()
        if (found := unexplained_imports((SRC / name).read_text(), tree))
    }
    listed = {name: unexplained.get(name) for name in sorted(NOT_YET_EXPLAINED)}
    assert {n: f for n, f in unexplained.items() if n not in NOT_YET_EXPLAINED} == {}, (
        "move these imports to the top of their module, or say on the line (or above it) "
        "why they are lazy: '# (lazy: <module> costs ~N ms of <path>; only <what> needs it)' "
        "or '# (an optional extra: ...)'"
    )
    assert [n for n, f in listed.items() if not f] == [], (
        "these files now pass: remove them from NOT_YET_EXPLAINED"
    )


def test_the_rule_finds_an_import_without_its_reason() -> None:
    source = (
        "def f():\n"
        "    import json\n"
        "def g():\n"
        "    # (lazy: pickle is ~1 ms; only g needs it)\n"
        "    import pickle\n"
        "    import io\n"  # the same block: the comment above covers it
        "def h():\n"
        "    import zlib  # (lazy: ~1 ms)\n"
        "if TYPE_CHECKING:\n"
        "    import decimal\n"
        "import csv\n"
    )
    assert unexplained_imports(source, ast.parse(source)) == ["line 2: import json"]


def _submodules_imported_from_the_root(tree: ast.Module) -> list[str]:
    return [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "wfkit"
        and node.level == 0
        and any(
            (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()
            for alias in node.names
        )
    ]


def test_no_module_imports_a_submodule_through_the_root_package() -> None:
    found = {
        name: hits
        for name, tree in _sources().items()
        if (hits := _submodules_imported_from_the_root(tree))
    }
    assert {n: h for n, h in found.items() if n not in NOT_YET_DIRECT} == {}, (
        "write 'import wfkit.<module> as <name>' or 'from wfkit.<module> import <names>'"
    )
    assert sorted(NOT_YET_DIRECT - set(found)) == [], (
        "these files now pass: remove them from NOT_YET_DIRECT"
    )


# -- the lazy imports, pinned ----------------------------------------------------------------
def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """Every module (full dotted names) loaded after running ``code`` in a fresh
    interpreter that imports this checkout's wfkit."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_wfkit_loads_no_engine_and_no_cache_policies() -> None:
    # wfkit.flows/tasks bind the engine on the first call (~9 ms of ~45 ms) and import the
    # cache policies for a task that caches (~7 ms): every pytest session imports wfkit.
    loaded = _modules_after("import wfkit")
    assert "wfkit.tasks" in loaded  # the subprocess did import wfkit
    assert loaded & {"wfkit._engine.calls", "wfkit._engine.submit", "wfkit.cache_policies"} == set()


def test_the_pytest_plugin_loads_no_store_and_no_patches() -> None:
    # The harness imports the stores (~8 ms, or ~24 ms with sqlite3) and the sleep patches
    # (~23 ms, mostly asyncio) on entry, not when the plugin loads it in every pytest session.
    loaded = _modules_after("import pytest\nimport wfkit.testing.pytest_plugin")
    assert "wfkit.testing.harness" in loaded
    assert {m for m in loaded if m.startswith("wfkit.stores")} == set()
    assert "wfkit.testing._patching" not in loaded


def test_a_first_sync_run_loads_no_asyncio(tmp_path: Path) -> None:
    # The sync driver imports asyncio (~12 ms) only to await an async hook.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["HOME"] = str(tmp_path)
    code = (
        "import wfkit\n"
        "@wfkit.task(retries=1, on_completion=[lambda task, run, state: None])\n"
        "def t(x: int) -> int: return x\n"
        "@wfkit.flow\n"
        "def f(x: int) -> int: return t(x)\n"
        "assert f(1) == 1\n"
    )
    loaded = _modules_after(code, env)
    assert "wfkit._engine.asyncutils" in loaded
    assert "asyncio" not in loaded


def test_a_harness_that_does_not_freeze_time_loads_no_freezegun() -> None:
    # freezegun (an optional extra, ~26 ms) is imported only to freeze wall time.
    code = (
        "import wfkit\n"
        "from wfkit.testing import harness\n"
        "@wfkit.flow\n"
        "def f() -> int: return 1\n"
        "with harness(freeze=False):\n"
        "    assert f() == 1\n"
    )
    loaded = _modules_after(code)
    assert "wfkit.testing._patching" in loaded
    assert {m for m in loaded if m.split(".")[0] == "freezegun"} == set()


def test_sync_submissions_load_neither_asyncio_nor_multiprocessing(tmp_path: Path) -> None:
    # asyncio (~30 ms) is imported by the first async task run (the runner's event loop,
    # awaiting a future); multiprocessing (~12 ms) by the first process-pool run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFKIT_")}
    env["HOME"] = str(tmp_path)
    code = (
        "import wfkit\n"
        "@wfkit.task\n"
        "def t(x: int) -> int: return x\n"
        "@wfkit.flow\n"
        "def f() -> list[int]: return t.map([1, 2]).result() + [t.submit(3).result()]\n"
        "assert f() == [1, 2, 3]\n"
    )
    loaded = _modules_after(code, env)
    assert "wfkit._engine.submit" in loaded and "wfkit._engine.process" in loaded
    assert "asyncio" not in loaded
    assert "multiprocessing" not in loaded


# -- the layers (import-linter) and cycles ---------------------------------------------------
def test_the_import_contracts_hold() -> None:
    # The contracts live in pyproject.toml ([tool.importlinter]): testing -> public API ->
    # engine -> foundations, and only wfkit.testing imports pytest/hypothesis/freezegun.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def _cycles(graph: object) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}  # type: ignore[attr-defined]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in edges[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    # Function-level imports count: a lazy import is an import all the same.
    import grimp

    graph = grimp.build_graph("wfkit", exclude_type_checking_imports=True, cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    class Graph:
        modules = {"a", "b", "c"}

        @staticmethod
        def find_modules_directly_imported_by(module: str) -> set[str]:
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[module]

    assert _cycles(Graph()) == [["a", "b"]]
