"""The layout of the package and its tests.

One-way imports without cycles, no single-host mixin, a small top level, and every optional
import in the tests skipped naming the extra that installs it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import loglik_map as lm

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli, which pytest itself needs there
    import tomli as tomllib

PACKAGE = Path(lm.__file__).resolve().parent
FOUNDATION = {"errors", "options", "_units", "_progress", "_util", "_labels", "_repr", "_version"}
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
    assert "loglik_map.scoring._loading" in GRAPH["loglik_map.scoring._hf"]
    assert "loglik_map.demo._zoo" in GRAPH["loglik_map.demo._run"]


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
    """The names in ``__all__`` of the public namespaces: the top level, ``errors``, ``options``, ``results``
    and every sub-package (read, not imported)."""
    out: set[str] = set()
    faces = [package / f"{name}.py" for name in ("__init__", "errors", "options", "results")]
    for path in [*faces, *package.glob("*/__init__.py")]:
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


# ---------------------------------------------------------------------- optional packages in the tests
#: Import names of the distributions the extras install, where they differ from the distribution's name.
IMPORT_NAMES = {"scikit-learn": ("sklearn",), "dask": ("dask", "distributed")}


def _extras_by_module(pyproject: Path) -> dict[str, set[str]]:
    """``{import name: {extras that install it}}`` from ``[project.optional-dependencies]``.

    pytest and hypothesis are left out: the tests cannot run without them (the conftest imports
    hypothesis).
    """
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    out: dict[str, set[str]] = {}
    for extra, requirements in extras.items():
        for requirement in requirements:
            dist = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0]
            if dist != "loglik_map":
                for module in IMPORT_NAMES.get(dist, (dist.replace("-", "_"),)):
                    out.setdefault(module, set()).add(extra)
    for needed in ("pytest", "hypothesis"):
        out.pop(needed, None)
    return out


def _skips(nodes: list[ast.stmt]) -> dict[str, ast.Call]:
    """The ``pytest.importorskip("name", …)`` calls among ``nodes`` (nested ones too), by top-level name."""
    out = {}
    for node in nodes:
        for call in ast.walk(node):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "importorskip" and call.args and isinstance(call.args[0], ast.Constant)):
                out[str(call.args[0].value).split(".")[0]] = call
    return out


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    return [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def unskipped_optional_imports(tests: Path, pyproject: Path) -> list[str]:
    """Imports of an extra's package in ``tests`` that no ``pytest.importorskip`` guards, and skips whose
    reason does not name an extra that installs the package.

    An import is guarded by an importorskip of a package of the same extra (an extra is installed
    whole) at the top of the module before it, in the function around it, or at the top of a
    ``conftest.py`` of its folder or a folder above (within ``tests``).
    """
    extras = _extras_by_module(pyproject)
    problems = []
    for path in sorted(tests.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(tests.parent)
        guarded: set[str] = set()  # extras guarded by the conftests above
        folder = path.parent
        while folder == tests or tests in folder.parents:
            conftest = folder / "conftest.py"
            if conftest.is_file() and conftest != path:
                for name in _skips(_top_level(ast.parse(conftest.read_text(encoding="utf-8")))):
                    guarded |= extras.get(name, set())
            folder = folder.parent
        for name, call in _skips([tree]).items():
            reason = next((kw.value.value for kw in call.keywords if kw.arg == "reason"
                           and isinstance(kw.value, ast.Constant)), "")
            if name in extras and not any(extra in str(reason) for extra in extras[name]):
                problems.append(f"{where}:{call.lineno}: the reason for skipping without {name} must name its "
                                f"extra ({' or '.join(sorted(extras[name]))}), got {reason!r}")
        # a function runs after the module's top: every skip there guards it, as do its own
        module = {e for n in _skips(_top_level(tree)) for e in extras.get(n, set())}
        scopes: list[tuple[list[ast.stmt], set[str]]] = [(tree.body, set())]
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scopes.append((node.body, module | {e for n in _skips(node.body) for e in extras.get(n, set())}))
        for body, local in scopes:
            seen = set(guarded) | local
            for statement in body:
                if body is tree.body:  # the module's top: a skip guards what comes after it
                    seen |= {e for n in _skips(_top_level(ast.Module(body=[statement], type_ignores=[])))
                             for e in extras.get(n, set())}
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue  # a function's body is its own scope
                for node in ast.walk(statement):
                    for name in _imported(node):
                        if name in extras and not extras[name] & seen:
                            problems.append(f"{where}:{node.lineno}: imports {name} without a "
                                            f"pytest.importorskip naming the {' or '.join(sorted(extras[name]))} extra")
    return problems


def test_every_optional_import_in_the_tests_is_skipped_naming_its_extra():
    tests = Path(__file__).resolve().parent
    problems = unskipped_optional_imports(tests, tests.parent / "pyproject.toml")
    assert not problems, "\n".join(problems)


def test_the_optional_import_rule_finds_an_unguarded_import(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project.optional-dependencies]\nio = ["zarr>=2"]\nparallel = ["dask[distributed]>=2024"]\n'
        'test = ["pytest>=8"]\n', encoding="utf-8")
    tests = tmp_path / "tests"
    (tests / "sub").mkdir(parents=True)
    (tests / "sub" / "conftest.py").write_text('import pytest\npytest.importorskip("dask", reason="parallel")\n',
                                               encoding="utf-8")
    (tests / "sub" / "test_ok.py").write_text("import dask.array\nimport distributed\n", encoding="utf-8")
    (tests / "test_bad.py").write_text(
        "import pytest\nimport zarr\n"                                   # before its skip: found
        'pytest.importorskip("zarr", reason="the parallel extra")\n'      # names the wrong extra: found
        "def test_a():\n    from dask import array\n"                     # no skip anywhere: found
        'def test_b():\n    pytest.importorskip("distributed", reason="parallel")\n    import dask\n',
        encoding="utf-8")
    problems = unskipped_optional_imports(tests, tmp_path / "pyproject.toml")
    assert [p.split(":")[:2] for p in problems] == [["tests/test_bad.py", "3"], ["tests/test_bad.py", "2"],
                                                    ["tests/test_bad.py", "5"]], problems


#: Modules that are public namespaces in their own right (as numpy.exceptions): the errors, the
#: options and the returned types. Every other module is an implementation module.
PUBLIC_MODULES = {"loglik_map.errors", "loglik_map.options", "loglik_map.results"}


def test_implementation_modules_are_private():
    """scipy.stats' underscore rule: a sub-package's ``__init__`` is its only public face."""
    public = [name for name, path in MODULES.items()
              if path.name not in ("__init__.py", "__main__.py") and name not in PUBLIC_MODULES
              and not any(part.startswith("_") for part in name.split(".")[1:])]
    assert not public, f"implementation modules with public names (rename to _name.py): {public}"
    packages = [name for name, path in MODULES.items() if path.name == "__init__.py" and name.count(".") == 2
                and not name.rpartition(".")[2].startswith("_")]
    assert not packages, f"sub-sub-packages with public names: {packages}"


@pytest.mark.parametrize("name", sorted(n for n, p in MODULES.items()
                                        if p.name == "__init__.py" and n.count(".") == 1))
def test_each_sub_package_face_lists_what_it_exports(name):
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ repeats a name"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
