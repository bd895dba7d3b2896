"""numpydoc validation of the public API: every public callable documents its parameters and returns.

Run by ``make lint``. Checks every name in ``loglik_map.__all__`` (and the public methods of the
public classes) for a docstring (GL08), documented parameters (PR01, PR02) and a Returns section
(RT01). Frozen dataclasses document their fields under ``Attributes``, which counts as documenting
the constructor's parameters. Exit status 1 lists what is missing.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys

from numpydoc.docscrape import ClassDoc
from numpydoc.validate import validate

CHECKS = ("GL08", "PR01", "PR02", "RT01")


def public_names(package: str = "loglik_map") -> list[str]:
    """Dotted names of the public callables: the package's ``__all__`` and their public methods."""
    top = importlib.import_module(package)
    out = []
    for name in sorted(top.__all__):
        obj = getattr(top, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        qual = f"{obj.__module__}.{obj.__qualname__}"
        out.append(qual)
        if getattr(obj, "_is_protocol", False):  # a Protocol has no constructor to document
            out.pop()
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, value in vars(obj).items():
                if attr.startswith("_") or isinstance(value, property):
                    continue
                if inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
                    out.append(f"{qual}.{attr}")
    return out


def _dataclass_fields_documented(qualname: str) -> bool:
    module, _, name = qualname.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except ImportError:  # a method: "<module>.<Class>.<method>"
        return False
    if not (inspect.isclass(cls) and dataclasses.is_dataclass(cls)):
        return False
    documented = {n.strip() for p in ClassDoc(cls)["Attributes"] for n in p.name.split(",")}
    return {f.name for f in dataclasses.fields(cls)} <= documented


def problems(name: str) -> list[str]:
    """``"<name> <code> <message>"`` for each failed check of one public callable."""
    errors = [(code, msg) for code, msg in validate(name)["errors"] if code in CHECKS]
    if errors and _dataclass_fields_documented(name):
        errors = [(code, msg) for code, msg in errors if code not in ("PR01", "PR02")]
    return [f"{name} {code} {msg}" for code, msg in errors]


def main() -> int:
    """Print every problem; return 1 if there is one."""
    found = [p for name in public_names() for p in problems(name)]
    print("\n".join(found) if found else f"numpydoc: {len(public_names())} public callables documented")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
