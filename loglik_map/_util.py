"""Small helpers shared by several modules (not public API)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def as_generator(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator (used as is) or None (fresh entropy)."""
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON beside ``path`` and rename it in, so readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
