"""A torch-free stand-in for model scoring, so store and fault tests run in any process in ~1 s."""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

import loglik_map as lm
from loglik_map.scoring import _runs as runs

#: Texts every fault test scores (fixed, so separate processes agree on the store's text set).
TEXTS = [f"text number {k}: " + "some words " * (5 + k % 7) for k in range(40)]


class FakeScorer:
    """Log-likelihoods derived from the model name alone: the same in every process.

    ``FAKE_SCORE_SECONDS`` (environment) makes every score take that long, so a test can kill a
    process while it scores; ``FAKE_SCORE_LOG`` names a file that gets one line per scoring.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def score(self, texts: lm.TextSet) -> lm.LogLikelihoodMatrix:
        log = os.environ.get("FAKE_SCORE_LOG")
        if log:  # one line per scoring, appended atomically (O_APPEND, one short write)
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{self.name} {os.getpid()}\n".encode())
            finally:
                os.close(fd)
        time.sleep(float(os.environ.get("FAKE_SCORE_SECONDS", "0")))
        seed = int(hashlib.sha1(self.name.encode("utf-8")).hexdigest()[:8], 16)
        rng = np.random.default_rng(seed)
        values = -0.6 * np.asarray(texts.n_bytes) + rng.normal(scale=5.0, size=(1, len(texts)))
        return lm.LogLikelihoodMatrix(values, models=[self.name], texts=texts.ids, n_bytes=texts.n_bytes,
                                      text_coords=texts.text_coords())


def fake_scorer(spec: runs.ModelSpec, **_defaults) -> FakeScorer:
    return FakeScorer(spec.label)


def expected(names: list[str]) -> lm.LogLikelihoodMatrix:
    """What scoring ``names`` must give."""
    texts = lm.TextSet(TEXTS)
    return lm.LogLikelihoodMatrix.concat([FakeScorer(n).score(texts) for n in names])


def install(monkeypatch=None) -> None:
    """Make every ModelSpec score with :class:`FakeScorer` (in this process)."""
    if monkeypatch is None:
        runs.ModelSpec.scorer = fake_scorer
    else:
        monkeypatch.setattr(runs.ModelSpec, "scorer", fake_scorer)


def score(store, names, **kwargs) -> runs.RunSummary:
    return lm.score_models([lm.ModelSpec("fake", name=n) for n in names], TEXTS, store, progress=False, **kwargs)
