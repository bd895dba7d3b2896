"""The ``Scorer`` protocol: anything that turns texts into a :class:`~loglik_map.LogLikelihoodMatrix`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..core._matrix import LogLikelihoodMatrix
from ..texts import TextSet

__all__ = ["Scorer"]


@runtime_checkable
class Scorer(Protocol):
    """Protocol of every scorer.

    A scorer needs one method, ``score(texts) -> LogLikelihoodMatrix``: one row per model it
    scores (a logit-lens scorer returns one row per layer), one column per text, values in nats,
    text ids from :func:`loglik_map.texts.text_id` and ``n_bytes`` the UTF-8 lengths, so its rows
    concatenate with any other scorer's. It should also have a ``name`` attribute, used as the
    key of its results in a run store.

    Examples
    --------
    A scorer for any model you can evaluate yourself::

        class MyScorer:
            name = "my-model"

            def score(self, texts):
                texts = lm.TextSet.coerce(texts)
                values = [[my_log_prob(t) for t in texts]]          # nats, shape (1, N)
                return lm.LogLikelihoodMatrix(values, models=[self.name], texts=texts.ids,
                                              n_bytes=texts.n_bytes, text_coords=texts.text_coords())
    """

    name: str

    def score(self, texts: TextSet | Sequence[str]) -> LogLikelihoodMatrix:  # pragma: no cover - protocol
        """Score the texts.

        Parameters
        ----------
        texts : TextSet or sequence of str
            The texts.

        Returns
        -------
        LogLikelihoodMatrix
            One row per model scored, one column per text, nats.
        """
        ...
