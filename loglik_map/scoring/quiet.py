"""Known third-party chatter, silenced while models load and score; every other message passes.

Scoring a quantized model on a CPU makes bitsandbytes log "MatMul8bitLt: inputs will be cast from
torch.float32 to float16 during quantization" on every 8-bit layer call (older versions warn it
through :mod:`warnings`), and its CPU backend logs "Failed to load CPU gemm_4bit_forward from
kernels-community: …" when it is imported without the optional ``kernels`` package (4-bit layers
then use bitsandbytes' own CPU code). Both say the expected thing about an expected set-up; they
are dropped by exact prefix, so any other warning or error of those libraries still shows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["KNOWN_NOISE", "KnownNoiseFilter", "quiet_third_party"]

#: (logger name, message prefix) of each silenced message.
KNOWN_NOISE: tuple[tuple[str, str], ...] = (
    ("bitsandbytes.autograd._functions", "MatMul8bitLt: inputs will be cast from"),
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
)


class KnownNoiseFilter(logging.Filter):
    """Drops log records whose message starts with one of ``prefixes``; keeps every other record."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silence :data:`KNOWN_NOISE` (log records and the equivalent :mod:`warnings`) inside the block."""
    attached = []
    for name, prefix in KNOWN_NOISE:
        logger = logging.getLogger(name)
        noise = KnownNoiseFilter((prefix,))
        logger.addFilter(noise)
        attached.append((logger, noise))
    try:
        with warnings.catch_warnings():
            for _, prefix in KNOWN_NOISE:
                warnings.filterwarnings("ignore", message=prefix)
            yield
    finally:
        for logger, noise in attached:
            logger.removeFilter(noise)
