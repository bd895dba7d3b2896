"""The built-in text set."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.texts import _builtin as datasets


def test_mini_text_set_is_chunked_labelled_and_disjoint_from_train():
    mini = datasets.load_texts("mini")
    train = datasets.load_texts("train")
    assert len(mini) == 1924 and len(train) == 2526
    assert not set(mini.ids) & set(train.ids)
    assert set(mini.domains) == set(datasets.DOMAINS)
    assert collections.Counter(mini.domains)["kjv"] == 500
    nb = mini.n_bytes
    assert nb.min() > 256 and nb.max() <= 1024 and 900 < nb.mean() < 1024  # SPEC §1 chunks
    np.testing.assert_array_equal(datasets.load_texts("mini").ids, mini.ids)  # deterministic


def test_domain_filter_and_licences():
    ts = datasets.load_texts("mini", domains=("wordnet",))
    assert set(ts.domains) == {"wordnet"} and len(ts) == 500
    text = datasets.licenses()
    for key in ("kjv", "shakespeare", "devils_dictionary", "wordnet", "python_docs"):
        assert key in text
    assert "public domain" in text and "MIT" in text
    with pytest.raises(lm.LoglikMapError, match="unknown text set"):
        datasets.load_texts("pile")
    with pytest.raises(lm.LoglikMapError, match="unknown domains"):
        datasets.load_texts("mini", domains=("news",))
