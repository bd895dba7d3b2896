"""The exception class raised by :mod:`loglik_map` for bad input, and its warning classes."""

from __future__ import annotations

__all__ = ["LoglikMapError", "DataIntegrityWarning", "UnreliableEstimateWarning"]


class LoglikMapError(ValueError):
    """Raised when input to :mod:`loglik_map` is invalid.

    Every message names the offending model, text, coordinate or file. It subclasses
    :class:`ValueError`, so ``except ValueError`` also catches it.
    """


class DataIntegrityWarning(UserWarning):
    """Stored data were damaged or incomplete and were skipped or repaired (the message names the file)."""


class UnreliableEstimateWarning(UserWarning):
    """An estimate was computed but cannot be trusted as usual (e.g. a standard error from too few texts)."""
