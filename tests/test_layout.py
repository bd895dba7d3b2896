"""The package's layout: the import graph has no cycle and points one way; old spellings still work, with a warning."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import loglik_map as lm

PACKAGE = Path(lm.__file__).resolve().parent
FOUNDATION = {"errors", "options", "units", "_util", "_labels", "_repr", "_version"}
#: Which layers a layer may import (its own included). "top" is loglik_map/__init__.py.
ALLOWED = {
    "foundation": {"foundation"},
    "texts": {"foundation", "texts"},
    "core": {"foundation", "texts", "core"},
    "io": {"foundation", "texts", "core", "io"},
    "scoring": {"foundation", "texts", "core", "io", "scoring"},
    "dynamics": {"foundation", "core", "dynamics"},
    "scale": {"foundation", "core", "dynamics", "scale"},
    "stats": {"foundation", "core", "stats"},
    "synthetic": {"foundation", "texts", "core", "synthetic"},
    "plotting": {"foundation", "core", "dynamics", "scale", "plotting"},
    # the returned types, gathered (RunSummary and DemoResult are imported on first use)
    "results": {"foundation", "core", "dynamics", "stats", "synthetic", "results"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST):
    """Import nodes anywhere in the module (functions too), except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path) -> set[str]:
    """The loglik_map modules that module ``name`` imports (names resolved to modules where they are ones)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                       for alias in node.names]
        out |= {t for t in targets if t in MODULES and t != name}
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "top"
    return "foundation" if parts[1] in FOUNDATION else parts[1]


def test_the_import_graph_has_no_cycle():
    done, active = set(), []

    def visit(node: str) -> None:
        if node in active:
            cycle = active[active.index(node):] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        active.append(node)
        for target in sorted(GRAPH[node]):
            visit(target)
        active.pop()
        done.add(node)

    for name in sorted(GRAPH):
        visit(name)
    assert len(done) == len(MODULES) > 40


def test_imports_point_one_way():
    wrong = [f"{src} imports {dst}" for src, targets in GRAPH.items() for dst in targets
             if _layer(src) in ALLOWED and _layer(dst) not in ALLOWED[_layer(src)]]
    assert not wrong, wrong
    # the two rules the layout exists for
    assert not any(_layer(dst) == "scoring" for src, t in GRAPH.items() if _layer(src) == "io" for dst in t)
    assert not any(_layer(dst) in ("io", "scoring") for src, t in GRAPH.items() if _layer(src) == "core" for dst in t)


def test_the_graph_sees_function_level_imports():
    # the rule must not be dodged by importing inside a function: the scorer loads its loading code there
    assert "loglik_map.scoring.loading" in GRAPH["loglik_map.scoring.hf"]
    assert "loglik_map.demo.zoo" in GRAPH["loglik_map.demo.run"]


def test_import_loglik_map_loads_no_heavy_dependency_and_no_demo():
    code = ("import sys, loglik_map; heavy = ('torch', 'numba', 'triton', 'transformers', 'matplotlib', "
            "'loglik_map.demo', 'loglik_map.scoring', 'loglik_map.plotting'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "[]", out


def test_lazy_names_load_on_first_use():
    assert lm.HFScorer is importlib.import_module("loglik_map.scoring").HFScorer
    assert lm.plotting is importlib.import_module("loglik_map.plotting")
    assert {"HFScorer", "demo", "scoring"} <= set(dir(lm))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        lm.nonsense  # noqa: B018


def test_all_is_grouped_by_topic_and_sorted_within_each_group():
    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    body = source[source.index("__all__ = ["):]
    body = body[: body.index("\n]\n")]
    groups, current = [], None
    for line in body.splitlines()[1:]:
        line = line.strip()
        if line.startswith("#"):
            current = []
            groups.append((line, current))
        elif line.startswith('"') and current is not None:
            current.append(line.strip('",'))
    assert len(groups) >= 6
    for title, names in groups:
        assert names == sorted(names), title  # classes and constants, then functions (isort order)
    listed = [n for _, names in groups for n in names]
    assert len(listed) == len(set(listed)) and set(listed) | {"__version__"} == set(lm.__all__)
    for name in lm.__all__:
        getattr(lm, name)  # every listed name exists (lazy ones load)


def test_the_tests_mirror_the_package():
    """tests/<sub-package>/ for each sub-package (the demo's tests use the scoring fixtures: tests/scoring/)."""
    tests = Path(__file__).resolve().parent
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} - {"demo"}
    missing = [name for name in sorted(subpackages) if not list((tests / name).glob("test_*.py"))]
    assert not missing, f"no tests/<name>/test_*.py for {missing}"
    assert (tests / "scoring" / "test_zoo_demo.py").is_file()


def test_the_top_level_holds_at_most_forty_names_a_user_types():
    names = [n for n in lm.__all__ if n != "__version__" and not inspect.ismodule(getattr(lm, n))]
    assert len(names) <= 40, f"{len(names)} top-level names; put the rest in their sub-package: {names}"
    returned = {"KLEstimate", "ConfidenceInterval", "KLDifference", "ModelProjection", "PowerLawFit", "RunSummary"}
    assert not returned & set(lm.__all__)  # returned types live in loglik_map.results
    assert returned <= set(lm.results.__all__)


def _base_name(node: ast.expr) -> str | None:
    """The class name a base expression names: ``Base``, ``mod.Base`` or ``Base[T]``."""
    if isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _public_names(package: Path) -> set[str]:
    """The names in ``__all__`` of the top level, of ``results`` and of every sub-package (read, not imported)."""
    out: set[str] = set()
    for path in [package / "__init__.py", package / "results.py", *package.glob("*/__init__.py")]:
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                out |= set(ast.literal_eval(node.value))
    return out


def single_host_mixins(package: Path) -> dict[str, list[str]]:
    """Private classes of ``package`` that exactly one class of the package subclasses: ``{base: [host]}``.

    Such a base is a file split, not a concept: its methods belong in the class that hosts them
    (one class, one module; array math beside it as private functions). Public classes (a user
    may subclass them too) and Protocols are left out.
    """
    defined: dict[str, bool] = {}  # class name -> whether it is a Protocol
    hosts: dict[str, list[str]] = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [_base_name(b) for b in node.bases]
                defined[node.name] = defined.get(node.name, False) or "Protocol" in bases
                for base in bases:
                    if base is not None:
                        hosts.setdefault(base, []).append(node.name)
    public = _public_names(package)
    return {base: names for base, names in hosts.items()
            if base in defined and len(names) == 1 and not defined[base] and base not in public}


def test_no_single_host_mixin():
    found = single_host_mixins(PACKAGE)
    assert not found, f"merge these into the one class that uses them (a long class file is fine): {found}"


def test_the_single_host_rule_finds_a_split_class(tmp_path):
    (tmp_path / "__init__.py").write_text('__all__ = ["Matrix", "Shared"]\n', encoding="utf-8")
    (tmp_path / "_parts.py").write_text(
        "from typing import Protocol\n"
        "class _Selection: ...\n"          # one host: found
        "class Helper: ...\n"              # one host, private module, not in __all__: found
        "class Shared: ...\n"              # public: a user may subclass it
        "class Provider(Protocol): ...\n"  # a Protocol
        "class _Two: ...\n"                # two hosts: a real shared base
        "class Matrix(_Selection, Shared, _Two): ...\n"
        "class Other(_Two, Provider, Helper): ...\n", encoding="utf-8")
    assert single_host_mixins(tmp_path) == {"_Selection": ["Matrix"], "Helper": ["Other"]}
