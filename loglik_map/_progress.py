"""One progress report for the whole package: a tqdm bar, nothing, or the caller's own callable.

Every public ``progress=`` parameter takes ``True``, ``False``, ``None`` (the ``progress`` option,
:func:`loglik_map.options.resolve_progress`) or a callable ``progress(done, total)``, and every
loop that reports progress does it through :func:`progress_reporter`. tqdm is imported only
when a bar is drawn (and a missing tqdm means no bar, not an error).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Union

from .errors import WrongTypeError
from .options import resolve_progress

__all__ = ["PROGRESS_DOC", "Progress", "ProgressArg", "Reporter", "check_progress", "progress_reporter"]

#: A caller's progress callable: ``progress(done, total)``.
Progress = Callable[[int, int], None]
#: What a ``progress=`` parameter accepts.
ProgressArg = Union[bool, Progress, None]  # noqa: UP007 (a runtime alias, kept readable on every Python)

#: The description every ``progress=`` parameter shares (placed with :func:`loglik_map._util.fill_doc`).
PROGRESS_DOC = """\
``True`` draws a tqdm bar (tqdm is imported only then; without tqdm nothing is drawn),
``False`` reports nothing, ``None`` follows the ``progress`` option
(:func:`loglik_map.set_options`, True unless set); a callable is called as
``progress(done, total)`` after each step of work, ``done`` reaching ``total`` at the end
(``total`` may grow on the way, e.g. when a batch that ran out of memory is split)."""


def check_progress(progress: Any, name: str = "progress") -> None:
    """Refuse a ``progress`` argument that is not True, False, None or a callable.

    Parameters
    ----------
    progress : object
        The argument.
    name : str
        How to name it in the message.

    Raises
    ------
    WrongTypeError
        Naming the argument, its type and what to pass.
    """
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise WrongTypeError(f"{name} must be True, False, None or a callable progress(done, total), "
                             f"got {type(progress).__name__} {progress!r}")


class Reporter:
    """What :func:`progress_reporter` yields: counts work done and passes it to a bar or a callable.

    It speaks tqdm's few words the package uses (``update``, ``set_description``,
    ``set_postfix_str``) and is callable as ``reporter(done, total)`` for code that knows its
    absolute position (the blocked walks of :class:`~loglik_map.ModelMap`).

    Parameters
    ----------
    sink : callable or None
        Called as ``sink(done, total)`` on every change; None reports nothing.
    total : int, optional
        Steps expected (None: given by the first absolute report).
    """

    def __init__(self, sink: Progress | None, total: int | None) -> None:
        self._sink = sink
        self.done = 0
        self.total = total
        self._bar: Any = None  # the tqdm bar, when one is drawn

    def __call__(self, done: int, total: int) -> None:
        """Report an absolute position: ``done`` of ``total`` steps."""
        self.done, self.total = int(done), int(total)
        self._emit()

    def update(self, n: int = 1) -> None:
        """``n`` more steps done."""
        self.done += int(n)
        self._emit()

    def add_total(self, n: int = 1) -> None:
        """``n`` more steps expected (a split batch)."""
        self.total = (self.total or 0) + int(n)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def set_description(self, text: str) -> None:
        """Relabel the bar (no effect on a callable)."""
        if self._bar is not None:
            self._bar.set_description(text)

    def set_postfix_str(self, text: str) -> None:
        """Show ``text`` after the bar (no effect on a callable)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def _emit(self) -> None:
        if self._sink is not None:
            self._sink(self.done, self.done if self.total is None else self.total)


@contextmanager
def progress_reporter(progress: ProgressArg, total: int | None = None, *, desc: str = "", unit: str = "it",
                      leave: bool = True) -> Iterator[Reporter]:
    """Report progress over ``total`` steps the way ``progress`` asks (the package's one progress helper).

    Parameters
    ----------
    progress : bool, callable or None
        ``True``: a tqdm bar; ``False``: nothing; ``None``: the ``progress`` option; a callable:
        called as ``progress(done, total)``.
    total : int, optional
        Steps expected; None when the first report gives it (the bar is then drawn at that
        report, so a walk with nothing left to do draws none).
    desc, unit : str
        The bar's label and unit.
    leave : bool
        Keep the finished bar on screen.

    Yields
    ------
    Reporter
        Call ``.update(n)`` (or ``reporter(done, total)``) as work is done.

    Raises
    ------
    WrongTypeError
        If ``progress`` is not True, False, None or a callable.
    """
    check_progress(progress)
    if callable(progress) and not isinstance(progress, bool):
        yield Reporter(progress, total)
        return
    if not resolve_progress(progress) or importlib.util.find_spec("tqdm") is None:
        yield Reporter(None, total)
        return
    reporter = Reporter(None, total)

    def draw(done: int, expected: int) -> None:
        if reporter._bar is None:
            from tqdm.auto import tqdm

            reporter._bar = tqdm(total=expected, desc=desc, unit=unit, leave=leave)
        reporter._bar.total = expected
        reporter._bar.update(done - reporter._bar.n)

    reporter._sink = draw
    if total:
        draw(0, total)
    try:
        yield reporter
    finally:
        if reporter._bar is not None:
            reporter._bar.close()
