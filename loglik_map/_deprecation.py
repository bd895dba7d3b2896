"""Old spellings kept for one release, each with a :class:`DeprecationWarning` that names the new one.

Everything deprecated lives here, so the next release deletes it in one place:

* :func:`renamed_parameter`: a keyword argument renamed (``random_state=`` → ``seed=``);
* :func:`renamed_attribute`: a property or method renamed (``ModelMap.coordinates`` → ``points``);
* :data:`MOVED_MODULES`: module paths of the flat layout before the sub-packages
  (``loglik_map.modelmap`` → ``loglik_map.core.modelmap``), served by an import hook.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any, TypeVar

from .errors import WrongTypeError

__all__ = ["MOVED_MODULES", "deprecated", "install_module_aliases", "renamed_attribute", "renamed_parameter"]

F = TypeVar("F", bound=Callable[..., Any])


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _first_frame_outside_package() -> int:
    """``stacklevel`` of the nearest caller outside :mod:`loglik_map` (as seen from :func:`deprecated`)."""
    frame: FrameType | None = sys._getframe(1)  # deprecated()'s frame: stacklevel 1 there
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def deprecated(old: str, new: str, *, stacklevel: int | None = None) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (removed in the next release).

    The warning points at the user's code: the nearest caller outside the package, however deep
    the call that reached the old spelling (``stacklevel`` overrides it).
    """
    level = _first_frame_outside_package() if stacklevel is None else stacklevel
    warnings.warn(f"{old} is deprecated and will be removed in the next release of loglik_map; use {new}",
                  DeprecationWarning, stacklevel=level)


def renamed_parameter(old: str, new: str) -> Callable[[F], F]:
    """Decorator: accept the keyword ``old`` for one release as ``new``, with a warning.

    Passing both is an error. The wrapped function's signature (``inspect.signature``) shows ``new``.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if new in kwargs:
                    raise WrongTypeError(f"{func.__qualname__}() got both {old}= (deprecated) and {new}=; pass {new}= only")
                deprecated(f"{func.__qualname__}({old}=...)", f"{new}=")
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def renamed_attribute(new: str, old: str, *, adapt: Callable[[Any], Any] | None = None) -> property:
    """A property ``old`` that warns and returns attribute ``new`` (methods come back as bound methods).

    ``adapt`` converts the value (e.g. a method wrapper that restores an old return type).
    """

    def get(self: Any) -> Any:
        deprecated(f"{type(self).__name__}.{old}", f"{type(self).__name__}.{new}")
        value = getattr(self, new)
        return adapt(value) if adapt is not None else value

    return property(get, doc=f"Deprecated alias of :attr:`{new}` (removed in the next release).")


#: Old module path → new one (a prefix: ``loglik_map.kernels._blas`` → ``loglik_map.core.kernels._blas``).
MOVED_MODULES = {
    "loglik_map.analyses": "loglik_map.stats",
    "loglik_map.centering": "loglik_map.core.centering",
    "loglik_map.datasets": "loglik_map.texts.builtin",
    "loglik_map.fits": "loglik_map.dynamics.fits",
    "loglik_map.kernels": "loglik_map.core.kernels",
    "loglik_map.klscale": "loglik_map.scale",
    "loglik_map.matrix": "loglik_map.core.matrix",
    "loglik_map.modelmap": "loglik_map.core.modelmap",
    "loglik_map.paired": "loglik_map.core.paired",
    "loglik_map.paths": "loglik_map.synthetic.paths",
    "loglik_map.preprocessing": "loglik_map.dynamics",
    "loglik_map.results": "loglik_map.core.results",
    "loglik_map.scoring.store": "loglik_map.io.runstore",
    "loglik_map.textids": "loglik_map.texts.ids",
    "loglik_map.trajectory": "loglik_map.dynamics.trajectory",
    "loglik_map.uncertainty": "loglik_map.dynamics.uncertainty",
    "loglik_map.weights": "loglik_map.dynamics.weights",
    "loglik_map.zoo": "loglik_map.demo.zoo",
}


def moved_module(name: str) -> str | None:
    """The new path of an old module path (or of a module below it), or None if it did not move."""
    for old, new in MOVED_MODULES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an old module path as the module at its new path (the same object), with a warning."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        # warnings.warn skips importlib's frames when it counts: 3 is the code that ran the import
        deprecated(f"the module {spec.name}", self.new, stacklevel=3)
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (the module at the new path is loaded); give it back its own ``__spec__``."""
        module.__spec__ = self.spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        new = moved_module(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install_module_aliases() -> None:
    """Serve the old module paths of :data:`MOVED_MODULES` (called once by ``loglik_map/__init__``)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())  # before the path finder, which would load a second copy
