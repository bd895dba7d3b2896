"""numpydoc validation of the public API, the way scikit-learn validates its own.

Run by ``make lint`` and by ``tests/test_docstrings.py``. The public API is every name in
``loglik_map.__all__`` and in the ``__all__`` of each public sub-package (:data:`SUBPACKAGES`);
for every public class, every public method found by ``dir()`` — inherited ones included, so a
method that lives on a mixin or base class is checked where the user meets it — and the
class itself (its constructor's parameters). Each is run through every check of
:func:`numpydoc.validate.validate` except :data:`IGNORED`. Frozen dataclasses document their
fields under ``Attributes``, which counts as documenting the constructor's parameters.

A sub-package whose optional dependency is not installed is skipped with a note naming it.
Exit status 1 lists every problem as ``<name> <code> <message>``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Iterator

from numpydoc.docscrape import ClassDoc
from numpydoc.validate import validate

#: Checks not run, and why (scikit-learn leaves out a similar short list).
IGNORED = {
    "ES01": "an extended summary is welcome, not required",
    "SA01": "See Also sections are optional",
    "EX01": "Examples sections are optional (the user guide and the gallery hold the examples)",
    "GL01": "the summary may start on the line of the opening quotes",
    "GL02": "the closing quotes may follow the last line (ruff's docstring style)",
    "SS05": "summaries may start with a noun (a property or a result type), not only an infinitive verb",
}

#: The public sub-packages whose ``__all__`` is public API (``plotting``, ``demo`` and ``scoring``
#: need their extras: matplotlib, torch).
SUBPACKAGES = ("core", "dynamics", "errors", "io", "options", "results", "scale", "stats", "synthetic", "texts",
               "scoring", "plotting", "demo")


def _public_objects(package: str = "loglik_map") -> Iterator[tuple[str, object]]:
    """``(module path, object)`` for every name in the ``__all__`` of the package and its sub-packages."""
    top = importlib.import_module(package)
    modules = [top]
    for sub in SUBPACKAGES:
        try:
            modules.append(importlib.import_module(f"{package}.{sub}"))
        except ImportError as err:
            print(f"note: {package}.{sub} not checked: {err}", file=sys.stderr)
    for module in modules:
        for name in sorted(module.__all__):
            try:
                obj = getattr(module, name)
            except ImportError as err:  # a name imported on first use from a missing extra
                print(f"note: {module.__name__}.{name} not checked: {err}", file=sys.stderr)
                continue
            if not inspect.ismodule(obj) and callable(obj):
                yield module.__name__, obj


def _own(cls: type, attr: str) -> bool:
    """Whether ``attr`` of ``cls`` is defined by a class of the package (not object, Exception, ...)."""
    for klass in cls.__mro__:
        if attr in vars(klass):
            return klass.__module__.split(".")[0] == cls.__module__.split(".")[0]
    return False


def public_names(package: str = "loglik_map") -> list[str]:
    """Dotted names of the public callables: each sub-package's ``__all__`` and their classes' public methods."""
    out: list[str] = []
    for _module, obj in _public_objects(package):
        qual = f"{obj.__module__}.{obj.__qualname__}"  # type: ignore[attr-defined]
        if qual in out:
            continue
        if not getattr(obj, "_is_protocol", False):  # a Protocol has no constructor to document
            out.append(qual)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr in dir(obj):
                if attr.startswith("_") or not _own(obj, attr):
                    continue
                value = inspect.getattr_static(obj, attr)
                if isinstance(value, property) or not callable(getattr(obj, attr)):
                    continue
                out.append(f"{qual}.{attr}")
    return list(dict.fromkeys(out))


def _dataclass_fields_documented(qualname: str) -> bool:
    module, _, name = qualname.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except ImportError:  # a method: "<module>.<Class>.<method>"
        return False
    if not (inspect.isclass(cls) and dataclasses.is_dataclass(cls)):
        return False
    documented = {n.strip() for p in ClassDoc(cls)["Attributes"] for n in p.name.split(",")}
    return {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")} <= documented


def problems(name: str) -> list[str]:
    """``"<name> <code> <message>"`` for each failed check of one public callable."""
    errors = [(code, msg) for code, msg in validate(name)["errors"] if code not in IGNORED]
    if errors and _dataclass_fields_documented(name):
        errors = [(code, msg) for code, msg in errors if code not in ("PR01", "PR02")]
    return [f"{name} {code} {msg}" for code, msg in errors]


def main() -> int:
    """Print every problem; return 1 if there is one."""
    names = public_names()
    found = [p for name in names for p in problems(name)]
    print("\n".join(found) if found else f"numpydoc: {len(names)} public callables pass every check but "
          f"{', '.join(sorted(IGNORED))}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
