"""The project's shape, read from the source with ``ast`` (nothing is imported): the engine (``fusion/``,
its CLI face ``fusion/cli/`` aside) imports no storage, app, components or Streamlit, and no project
modules import each other in a circle, however long.

Every import statement counts, also those inside functions (the lazy imports that keep litellm off
offline paths are imports all the same) and under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import graphlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fusion", "storage", "app", "components")
ENGINE = "fusion"
ENGINE_FACES = ("fusion.cli",)  # above engine and storage: may import both
NOT_FOR_THE_ENGINE = ("storage", "app", "components", "streamlit")


@dataclass(frozen=True)
class Edge:
    """``module`` imports ``target`` (a dotted name: a project module, or anything else) at ``line``."""

    module: str
    target: str
    line: int
    typing_only: bool = False  # under ``if TYPE_CHECKING:``: read by type checkers, never run


def module_names(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted name -> file of every module under the packages (``pkg/__init__.py`` is ``pkg``)."""
    out: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative forms resolved against ``module``."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    # ``from . import x`` in a package's __init__ is relative to the package itself, elsewhere to the parent.
    keep = len(parts) - node.level + (1 if _is_package(path) else 0)
    base = parts[:keep]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> list[Edge]:
    """What one module imports: ``import a.b`` gives a.b; ``from a import b`` gives a.b when that is a
    module of the project, else a."""
    edges: list[Edge] = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_lines = {
        inner.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
        if hasattr(inner, "lineno")
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            edges += [Edge(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            names_from_base = False
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    edges.append(Edge(module, sub, node.lineno))
                else:
                    names_from_base = True
            if names_from_base and base:
                edges.append(Edge(module, base, node.lineno))
    return [Edge(e.module, e.target, e.line, e.line in typing_lines) for e in edges]


def all_imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Edge]:
    files = module_names(root, packages)
    known = set(files)
    return [edge for module, path in files.items() for edge in imports_of(module, path, known)]


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def engine_violations(edges: list[Edge]) -> list[str]:
    """One line per import of storage, app, components or streamlit by an engine module."""
    return [
        f"{e.module} imports {e.target} (line {e.line})"
        for e in edges
        if _in(e.module, ENGINE)
        and not any(_in(e.module, face) for face in ENGINE_FACES)
        and any(_in(e.target, banned) for banned in NOT_FOR_THE_ENGINE)
    ]


def project_graph(edges: list[Edge], known: set[str]) -> dict[str, set[str]]:
    """Module -> the project modules it imports at run time (``import a.b.c`` of a name inside a.b counts as
    a.b). Imports for type checkers only are left out: they make no circle when the program runs."""
    graph: dict[str, set[str]] = {m: set() for m in known}
    for e in edges:
        if e.typing_only:
            continue
        target = e.target
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != e.module:
            graph[e.module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports (its modules, the first repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def check(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Everything wrong with the shape of the tree at ``root``; empty when it is right."""
    edges = all_imports(root, packages)
    problems = engine_violations(edges)
    cycle = find_cycle(project_graph(edges, set(module_names(root, packages))))
    if cycle:
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems


# ------------------------------------------------------------------------------------------------ the project


def test_the_project_has_the_engine_shape() -> None:
    assert check(ROOT) == []


def test_the_project_graph_is_read_in_full() -> None:
    """The checks above pass for a reason: the walk sees the project's modules and their lazy imports."""
    edges = all_imports(ROOT)
    known = set(module_names(ROOT))
    assert {"fusion.batch", "fusion.cli", "fusion.cli.batch", "storage.runs", "app.results"} <= known
    graph = project_graph(edges, known)
    assert "fusion.types" in graph["fusion.batch.input"]
    # A package's face imports its own modules (and they never import it back: no circle).
    assert "fusion.batch.runner" in graph["fusion.batch"]
    assert not any("fusion.batch" in graph[m] for m in known if m.startswith("fusion.batch."))
    # Inside functions: the CLI opens the database lazily, the batch reaches the pipeline lazily.
    assert "storage.migrations" in graph["fusion.cli.batch"]
    assert "fusion.pipeline" in graph["fusion.batch.steps"]
    assert "fusion.cli.options" in graph["fusion.cli.run"] and "fusion.cli.run" in graph["fusion.cli"]


# ------------------------------------------------------------------------------------------------ the checker


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def test_a_forbidden_import_in_the_engine_is_reported(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "fusion/good.py": "from fusion import types\nimport json\n",
            "fusion/types.py": "X = 1\n",
            "fusion/lazy.py": "def save(run):\n    from storage.runs import save_run\n    save_run(run)\n",
            "fusion/page.py": "import streamlit as st\n",
            "fusion/deep/widget.py": "from components.cards import card\n",
            "fusion/cli/run.py": "from storage.runs import save_run\nimport fusion.good\n",  # the CLI may
            "storage/runs.py": "from fusion.types import X\n",  # storage may import the engine
            "components/cards.py": "def card(): ...\n",
        },
    )
    assert check(root) == [
        "fusion.deep.widget imports components.cards (line 1)",
        "fusion.lazy imports storage.runs (line 2)",
        "fusion.page imports streamlit (line 1)",
    ]


def test_an_import_cycle_is_reported_however_it_is_written(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "storage/a.py": "def f():\n    from . import b\n",  # relative, inside a function
            "storage/b.py": "import storage.a\n",
        },
    )
    problems = check(root)
    assert len(problems) == 1 and problems[0].startswith("import cycle: ")
    assert set(problems[0].removeprefix("import cycle: ").split(" -> ")) == {"storage.a", "storage.b"}


def test_a_longer_cycle_through_packages_is_reported(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "app/page.py": "from components import view\n",
            "components/view.py": "from storage.reads import rows\n",
            "storage/reads.py": "from app.page import draw\n",
        },
    )
    (problem,) = check(root)
    cycle = problem.removeprefix("import cycle: ").split(" -> ")
    assert set(cycle) == {"app.page", "components.view", "storage.reads"} and cycle[0] == cycle[-1]


def test_a_package_importing_its_own_modules_is_no_cycle(tmp_path: Path) -> None:
    """``fusion/cli/__init__`` imports its command modules; they import a sibling, not the package."""
    root = write_tree(
        tmp_path,
        {
            "fusion/cli/__init__.py": "from fusion.cli import run\nfrom .options import EXIT_OK\n",
            "fusion/cli/run.py": "from fusion.cli.options import EXIT_OK\n",
            "fusion/cli/options.py": "EXIT_OK = 0\n",
        },
    )
    assert check(root) == []
    # ... but a command importing the package back closes a circle.
    (root / "fusion/cli/options.py").write_text("from fusion.cli import main\n", encoding="utf-8")
    (problem,) = check(root)
    assert problem.startswith("import cycle: ") and "fusion.cli" in problem.split(" -> ")


def test_imports_for_type_checkers_make_no_cycle_but_still_count_against_the_engine(tmp_path: Path) -> None:
    files = {
        "fusion/__init__.py": "",
        "fusion/a.py": "from fusion.b import B\n",
        "fusion/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fusion.a import A\n"
                       "    from storage.runs import save_run\n",
        "storage/__init__.py": "",
        "storage/runs.py": "",
        "app/__init__.py": "",
        "components/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert check(tmp_path) == ["fusion.b imports storage.runs (line 4)"]
