"""A tiny transformer treated as closed: sampled with ``generate`` on CPU, placed among perturbed copies,
compared with the exact KLs.

The tokenizer is character-level over a small alphabet, so every sampled token sequence is the
tokenization of its decoded text (a byte-level BPE would re-tokenize some samples differently and
the scored texts would no longer be draws from the model). Nothing stops generation (no EOS), so
every sample has the same number of tokens and no stop probability is left unscored.

"Exact" here is the sequence-level KL(q‖p_i) evaluated with :func:`loglik_map.exact_kl` on q's
own samples: at every position the full next-token KL, summed over each sample — an unbiased,
much less noisy estimate of KL(q‖p_i) than the log-likelihood differences place_by_samples
uses (it needs q's logits, which a closed model does not give).
"""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.scoring import Execution

from . import tiny

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,"
LN2 = np.log(2.0)


def char_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(ALPHABET)}))
    # any other character (the scorer's self-check probe has some) becomes a space: the samples,
    # all in the alphabet, are untouched, and no [UNK] token is needed that the model could sample
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex("[^a-z .,]"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def perturbed(model, scale: float, seed: int):
    import copy

    import torch

    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * p.abs().mean() * torch.randn(p.shape, generator=g))
    return out


@pytest.fixture(scope="module")
def closed_setup(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("closed")
    tok = char_tokenizer()
    q = tiny.build_model("gpt_neox", tok, seed=0)
    folders = {"q": tiny.save(q, tok, root / "q")}
    for i, scale in enumerate((0.1, 0.25, 0.5)):
        folders[f"open-{scale}"] = tiny.save(perturbed(q, scale, seed=10 + i), tok, root / f"open-{scale}")
    folders["other-seed"] = tiny.save(tiny.build_model("gpt_neox", tok, seed=5), tok, root / "other-seed")
    torch.manual_seed(0)
    first = torch.randint(0, 26, (300, 1))
    with torch.no_grad():
        ids = q.generate(input_ids=first, attention_mask=torch.ones_like(first), do_sample=True, max_new_tokens=30,
                         top_k=0, top_p=1.0, temperature=1.0, pad_token_id=0, eos_token_id=None)
    samples = [tok.decode(row, clean_up_tokenization_spaces=False) for row in ids.tolist()]
    assert all(tok(s).input_ids == row for s, row in zip(samples, ids.tolist()))  # the round trip is exact
    texts = lm.TextSet.from_samples(samples, model="q", temperature=1.0, top_p=1.0, top_k=0)
    opens = [k for k in folders if k != "q"]
    matrix = lm.LogLikelihoodMatrix.concat([lm.HFScorer(folders[k], name=k, execution=Execution(progress=False)).score(texts)
                                            for k in opens])
    return folders, texts, matrix, opens


def test_the_placement_agrees_with_the_exact_kls(closed_setup):
    folders, texts, matrix, opens = closed_setup
    placed = lm.place_by_samples(matrix)
    assert placed.attrs["closed"] == "q" and placed.attrs["n_samples"] == 300
    draws = texts.text_coords()["n_draws"].astype(float)
    scale = float(draws @ texts.n_bytes) * LN2
    exact = {k: float(draws @ lm.exact_kl(folders["q"], folders[k], texts).kl_ab.values) / scale for k in opens}
    assert min(exact, key=exact.get) == placed.attrs["nearest"] == "open-0.1"
    ref = exact[placed.attrs["reference"]]
    for k in opens:
        estimate, se = float(placed.kl_excess.sel(model=k)), float(placed.se.sel(model=k))
        assert abs(estimate - (exact[k] - ref)) <= 3 * se + 1e-9, (k, estimate, exact[k] - ref, se)
    # the order of the open models by distance from q is the exact one
    assert sorted(opens, key=exact.get) == list(placed.model.values[np.argsort(placed.closeness_rank.values)])


def test_paired_comparison_of_two_open_models(closed_setup):
    _, _, matrix, _ = closed_setup
    cmp = lm.core.closer_by_samples(matrix, "open-0.1", "other-seed")
    assert cmp.difference < 0 and cmp.p_value < 1e-6 and cmp.closed == "q"
