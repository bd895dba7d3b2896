"""The single exception class raised by :mod:`loglik_map` for bad input."""

from __future__ import annotations

__all__ = ["LoglikMapError"]


class LoglikMapError(ValueError):
    """Raised when input to :mod:`loglik_map` is invalid.

    Every message names the offending model, text, coordinate or file. It subclasses
    :class:`ValueError`, so ``except ValueError`` also catches it.
    """
