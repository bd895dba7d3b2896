"""Every causal-LM architecture of the installed transformers: scored right, or refused clearly.

Generated, not hand-listed: one case per entry of ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``. Each
tiny random model (:mod:`tests.scoring.zoo`, cached between sessions) is saved with a tokenizer
and loaded through the real ``from_pretrained`` path; :class:`~loglik_map.HFScorer` must agree
with the model's own forward, one text at a time (≤ 1e-3 nats per text, float32) or refuse with
a :class:`~loglik_map.LoglikMapError` that names the architecture, and the logit lens's last
layer must equal the final-only score (or the lens is refused the same way). Architectures
that transformers itself cannot build tiny or run from ``input_ids`` are expected failures
with transformers' reason. ``tools/supported_architectures.py`` writes the docs page from the
same checks.
"""

from __future__ import annotations

import pytest

from . import zoo

pytestmark = pytest.mark.filterwarnings("ignore")


ARCHITECTURES = [arch for arch, _ in zoo.architectures()]


@pytest.fixture(scope="session")
def survey():
    """Every architecture checked once, in one process per CPU (tiny models cached between sessions)."""
    root = zoo.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return zoo.survey(ARCHITECTURES, root)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architecture_is_scored_right_or_refused(arch, survey):
    rec = survey[arch]
    if rec["scorer"] == "cannot build":
        pytest.xfail(f"transformers cannot build {arch} tiny or run it from input_ids: {rec['notes']}")
    if rec["scorer"] == "slow":
        pytest.skip(f"{arch}: {rec['notes']}")
    assert rec["scorer"] in ("agrees", "refused"), rec
    if rec["scorer"] == "refused":
        assert rec["model_class"] in rec["notes"] or repr(arch) in rec["notes"], rec
        return
    assert rec["diff"] <= zoo.AGREE_NATS, rec
    assert rec["lens"] in ("agrees", "refused"), rec
    if rec["lens"] == "agrees":
        assert rec["lens_diff"] <= 1e-5, rec
    else:
        assert arch in rec["notes"] or rec["model_class"] in rec["notes"], rec
