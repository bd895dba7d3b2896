"""The exception class raised by :mod:`loglik_map` for bad input, and its warning classes."""

from __future__ import annotations

__all__ = ["LoglikMapError", "DataIntegrityWarning", "LoglikMapWarning", "MissingExtraError", "UnreliableEstimateWarning"]


class LoglikMapError(ValueError):
    """Raised when input to :mod:`loglik_map` is invalid.

    Every message names the offending model, text, coordinate or file. It subclasses
    :class:`ValueError`, so ``except ValueError`` also catches it.
    """


class LoglikMapWarning(UserWarning):
    """A result was computed but may not mean what you think (e.g. truncated texts, per-token means).

    Every message names what looks wrong and what to do about it.
    """


class MissingExtraError(LoglikMapError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it.

    It is both an :class:`ImportError` and a :class:`LoglikMapError`.

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


def require_extra(module: str, extra: str, purpose: str):
    """Import ``module``, or raise :class:`MissingExtraError` naming the ``extra`` that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(purpose, module.split(".")[0], extra) from None
class DataIntegrityWarning(UserWarning):
    """Stored data were damaged or incomplete and were skipped or repaired (the message names the file)."""


class UnreliableEstimateWarning(UserWarning):
    """An estimate was computed but cannot be trusted as usual (e.g. a standard error from too few texts)."""
