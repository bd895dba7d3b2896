"""The exceptions and warnings of :mod:`loglik_map`.

Every error is a :class:`LoglikMapError` (a :class:`ValueError`), and the ones a Python user
catches by their standard type also are that type: an unknown model or text label is a
:class:`KeyError` (:class:`UnknownLabelError`), an argument of the wrong type a
:class:`TypeError` (:class:`WrongTypeError`), a missing optional dependency an
:class:`ImportError` (:class:`MissingExtraError`, raised by :func:`require_extra`). Every
message names the problem and what to do about it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "DataIntegrityWarning",
    "LoglikMapError",
    "LoglikMapWarning",
    "MissingExtraError",
    "UnknownLabelError",
    "UnreliableEstimateWarning",
    "WrongTypeError",
    "require_extra",
]


class LoglikMapError(ValueError):
    """Raised when input to :mod:`loglik_map` is invalid.

    Every message names the offending model, text, coordinate or file and says what to do.
    It subclasses :class:`ValueError`, so ``except ValueError`` also catches it.
    """


class UnknownLabelError(LoglikMapError, KeyError):
    """A model, text or coordinate label that does not exist; the message suggests the closest ones.

    It is both a :class:`KeyError` (what a mapping lookup raises) and a :class:`LoglikMapError`.
    """

    def __str__(self) -> str:
        # KeyError's str() quotes its argument (it is meant for a bare key); this one is a sentence
        return str(self.args[0]) if self.args else ""


class WrongTypeError(LoglikMapError, TypeError):
    """An argument of the wrong type (e.g. a list where a :class:`~loglik_map.LogLikelihoodMatrix` is needed).

    It is both a :class:`TypeError` and a :class:`LoglikMapError`.
    """


class MissingExtraError(LoglikMapError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it.

    It is both an :class:`ImportError` and a :class:`LoglikMapError`; raised by :func:`require_extra`.

    Parameters
    ----------
    purpose : str
        What needs the module, e.g. ``"scoring"`` (starts the message).
    module : str
        The module that could not be imported.
    extra : str
        The ``loglik_map`` extra that installs it.

    Attributes
    ----------
    extra : str
        The ``loglik_map`` extra to install, e.g. ``"models"`` (``pip install 'loglik_map[models]'``).
    name : str
        The module that could not be imported.
    """

    def __init__(self, purpose: str, module: str, extra: str) -> None:
        super().__init__(f"{purpose} needs {module}, which is not installed: pip install 'loglik_map[{extra}]'")
        self.name = module
        self.extra = extra


def require_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the ``extra`` that provides it.

    The one place where :mod:`loglik_map` imports an optional dependency.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"matplotlib.pyplot"``.
    extra : str
        The extra that installs it, e.g. ``"plot"``.
    purpose : str
        What needs it, e.g. ``"plotting"``.

    Returns
    -------
    module
        The imported module.

    Examples
    --------
    >>> require_extra("json", "io", "reading JSON").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(purpose, module.split(".")[0], extra) from None


class LoglikMapWarning(UserWarning):
    """A result was computed but may not mean what you think (e.g. truncated texts, per-token means).

    Every message names what looks wrong and what to do about it.
    """


class DataIntegrityWarning(UserWarning):
    """Stored data were damaged or incomplete and were skipped or repaired (the message names the file)."""


class UnreliableEstimateWarning(UserWarning):
    """An estimate was computed but cannot be trusted as usual (e.g. a standard error from too few texts)."""
