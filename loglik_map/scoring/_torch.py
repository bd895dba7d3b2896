"""The one way scoring code gets torch: imported on first use, with the error that names the extra.

Importing :mod:`loglik_map.scoring` does not import torch; every function that needs it calls
:func:`torch_module` (no function takes the torch module as an argument).
"""

from __future__ import annotations

from types import ModuleType

from ..errors import require_extra

__all__ = ["require_torch", "torch_module"]


def torch_module() -> ModuleType:
    """:mod:`torch`, imported on the first call (later calls find it in ``sys.modules``).

    Returns
    -------
    module
        :mod:`torch`.

    Raises
    ------
    MissingExtraError
        If torch is not installed, naming the ``models`` extra that installs it.
    """
    return require_extra("torch", "models", "scoring")


def require_torch() -> ModuleType:
    """:func:`torch_module`, after checking that transformers is installed too (loading a model needs both).

    Returns
    -------
    module
        :mod:`torch`; a :class:`~loglik_map.errors.MissingExtraError` names the ``models`` extra
        if torch or transformers is missing.
    """
    torch = torch_module()
    require_extra("transformers", "models", "scoring")
    return torch
