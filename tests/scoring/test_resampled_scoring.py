"""New models scored only on resampled texts join the weighted map, or are projected onto it."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.io._runstore.layout import fingerprint_ids


@pytest.mark.filterwarnings("ignore::loglik_map.UnreliableEstimateWarning")  # 24 tiny texts
def test_new_models_scored_on_the_selection_join_the_weighted_map(tmp_path, model_dirs, texts):
    first = lm.ModelSpec(str(model_dirs["gpt_neox"]), name="neox-a"), lm.ModelSpec(str(model_dirs["gpt2"]), name="gpt2")
    lm.score_models(first, texts, tmp_path / "full", progress=False)
    full = lm.open_matrix(tmp_path / "full")
    selection = lm.resample_texts(full, 16, "ls", seed=0)
    assert selection.attrs["selection_source_fingerprint"] == fingerprint_ids(texts.ids)  # the store's own
    # the new model is scored on the selected texts only
    new_spec = lm.ModelSpec(str(model_dirs["gpt_neox_b"]), name="neox-b")
    summary = lm.score_models([new_spec], texts.matching(selection), tmp_path / "selected", progress=False)
    assert summary.ok
    new = lm.open_matrix(tmp_path / "selected")
    assert list(new.texts) == list(selection.texts)
    np.testing.assert_array_equal(new.data["text_weight"].values, selection.data["text_weight"].values)
    # its row equals the full scoring's row on those texts
    reference = lm.HFScorer(str(model_dirs["gpt_neox_b"]), name="neox-b").score(texts)
    np.testing.assert_allclose(new.values[0], reference.sel(text=list(selection.texts)).values[0], rtol=1e-12)
    # joined: one weighted map; projected: the same KL and SE to each mapped model
    joined = lm.ModelMap(lm.LogLikelihoodMatrix.concat([selection, new]))
    assert "weighted" in repr(joined)
    projected = lm.ModelMap(selection).project(new)
    for other in ("neox-a", "gpt2"):
        assert float(projected.kl.sel(model="neox-b", model_=other)) == pytest.approx(joined.kl("neox-b", other))
        assert float(projected.se.sel(model="neox-b", model_=other)) == pytest.approx(joined.kl_se("neox-b", other))
