"""Known third-party chatter, silenced while models load and score; errors always pass.

Scoring a quantized model on a CPU makes bitsandbytes log "MatMul8bitLt: inputs will be cast from
torch.float32 to float16 during quantization" on every 8-bit layer call (older versions warn it
through :mod:`warnings`), and its CPU backend logs "Failed to load CPU gemm_4bit_forward from
kernels-community: …" when the optional ``kernels`` package is missing or refuses to fetch code
without ``trust_remote_code`` (4-bit layers then use bitsandbytes' own CPU code), after
``kernels`` itself logged why ("Skipping publisher trust check …" offline). The wording of
such notices changes between versions, so they are filtered by where they come from and how
severe they are, not by their text: inside :func:`quiet_third_party`, records below ``ERROR``
of the loggers in :data:`KNOWN_NOISE` (and of their children) and the :class:`UserWarning`\\ s
issued from those packages are dropped; their errors, and everything of every other library,
still show.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["KNOWN_NOISE", "quiet_third_party"]

#: Packages whose notices are silenced while scoring: (logger name, the lowest level still shown).
KNOWN_NOISE: tuple[tuple[str, int], ...] = (("bitsandbytes", logging.ERROR), ("kernels", logging.ERROR))


@contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silence the notices of :data:`KNOWN_NOISE` (log records and :class:`UserWarning`) inside the block."""
    saved = []
    for name, level in KNOWN_NOISE:
        logger = logging.getLogger(name)  # its children (bitsandbytes.backends.cpu.ops, …) inherit the level
        saved.append((logger, logger.level))
        if logger.getEffectiveLevel() < level:
            logger.setLevel(level)
    try:
        with warnings.catch_warnings():
            for name, _ in KNOWN_NOISE:
                warnings.filterwarnings("ignore", category=UserWarning, module=rf"{re.escape(name)}(\.|$)")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)
