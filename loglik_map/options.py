"""Package-wide defaults, in the style of ``xarray.set_options``: the pairwise-KL kernel and progress bars.

Every function that uses a kernel also takes ``backend=`` directly, and every one that can show
progress bars takes ``progress=``; an option only sets the default used when that argument is
``None``.
"""

from __future__ import annotations

from typing import Any

from .errors import LoglikMapError

__all__ = ["KERNEL_BACKENDS", "get_options", "resolve_progress", "set_options"]

#: ``"auto"`` = BLAS Gram formulation with exact per-pair fallback (the fastest measured, see
#: ``benchmarks/RESULTS.md``); ``"numba"`` = tiled direct numba kernel; ``"numpy"`` = plain
#: direct numpy evaluation (the reference implementation).
KERNEL_BACKENDS = ("auto", "blas", "numba", "numpy")

_OPTIONS: dict[str, Any] = {"kernel_backend": "auto", "progress": True}

_VALIDATORS = {"kernel_backend": lambda v: v in KERNEL_BACKENDS, "progress": lambda v: isinstance(v, bool)}


def get_options() -> dict[str, Any]:
    """The current options.

    Returns
    -------
    dict
        A copy: ``{"kernel_backend": ...}``.
    """
    return dict(_OPTIONS)


def resolve_progress(progress: bool | None) -> bool:
    """Whether to show a progress bar: ``progress`` itself, or the ``progress`` option when it is ``None``.

    Parameters
    ----------
    progress : bool or None
        What the caller asked for.

    Returns
    -------
    bool
        Whether to show the bar.
    """
    return bool(_OPTIONS["progress"]) if progress is None else bool(progress)


class set_options:
    """Set options globally or, used as a context manager, inside a ``with`` block.

    Parameters
    ----------
    **kwargs
        Options to set: ``kernel_backend`` ({"auto", "blas", "numba", "numpy"}), the default
        backend of the all-pairs KL/SE kernels; ``progress`` (bool, default True), whether
        progress bars (tqdm) are shown wherever a ``progress`` argument is ``None``: the
        scorers (``Execution(progress=None)``, the default), :func:`~loglik_map.score_models`,
        the blocked walks of :class:`~loglik_map.ModelMap`, the atlas,
        :func:`~loglik_map.demo.build_zoo` and :func:`~loglik_map.demo.run_demo`. An unknown
        option is refused.

    Examples
    --------
    >>> import loglik_map as lm
    >>> with lm.set_options(kernel_backend="numpy"):
    ...     lm.options.get_options()["kernel_backend"]
    'numpy'
    """

    def __init__(self, **kwargs: Any) -> None:
        self._old: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key not in _OPTIONS:
                raise LoglikMapError(f"unknown option {key!r}; options are {sorted(_OPTIONS)}")
            if not _VALIDATORS[key](value):
                raise LoglikMapError(f"invalid value {value!r} for option {key!r}"
                                     + (f"; use one of {KERNEL_BACKENDS}" if key == "kernel_backend" else "; use True or False"))
            self._old[key] = _OPTIONS[key]
        _OPTIONS.update(kwargs)

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: object) -> None:
        _OPTIONS.update(self._old)
