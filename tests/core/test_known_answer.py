"""Known-answer tests: Markov-chain models whose log-likelihoods and KL are exact."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm


def _pair(eps, n_texts, seed=0, text_seed=None):
    """Source chain p0; models p± = softmax(log p0 ± eps·U); texts sampled from p0."""
    rng = np.random.default_rng(seed)
    alphabet = "abcdef"
    base = rng.normal(size=(6, 6))
    U = rng.normal(size=(6, 6))
    src = lm.synthetic.MarkovChainModel.from_logits(alphabet, base, "source")
    a = lm.synthetic.MarkovChainModel.from_logits(alphabet, base + eps * U, "a")
    b = lm.synthetic.MarkovChainModel.from_logits(alphabet, base - eps * U, "b")
    texts = src.sample(n_texts, 300, seed=rng if text_seed is None else text_seed)
    L = np.vstack([a.log_likelihood(texts), b.log_likelihood(texts)])
    m = lm.LogLikelihoodMatrix(L, models=["a", "b"], texts=[f"t{k}" for k in range(n_texts)],
                               n_bytes=np.full(n_texts, 300))
    start = src.stationary()
    true_nats = 0.5 * (a.kl_divergence(b, 300, start) + b.kl_divergence(a, 300, start))
    return lm.ModelMap(m).compare("a", "b"), true_nats / (300 * np.log(2))


def test_markov_log_likelihood_is_exact():
    chain = lm.synthetic.MarkovChainModel("ab", np.array([[0.9, 0.1], [0.4, 0.6]]))
    ll = chain.log_likelihood(["aab", "ba"])
    np.testing.assert_allclose(ll, [np.log(0.9) + np.log(0.1), np.log(0.4)])
    np.testing.assert_allclose(chain.stationary(), [0.8, 0.2])


def test_markov_kl_matches_brute_force_enumeration():
    rng = np.random.default_rng(1)
    p = lm.synthetic.MarkovChainModel.from_logits("xyz", rng.normal(size=(3, 3)))
    q = lm.synthetic.MarkovChainModel.from_logits("xyz", rng.normal(size=(3, 3)))
    start = np.array([0.2, 0.5, 0.3])
    import itertools

    total = 0.0
    for seq in itertools.product("xyz", repeat=4):
        text = "".join(seq)
        w = start["xyz".index(text[0])] * np.exp(p.log_likelihood([text])[0])
        total += w * (p.log_likelihood([text])[0] - q.log_likelihood([text])[0])
    assert p.kl_divergence(q, 4, start) == pytest.approx(total, rel=1e-12)


def test_estimator_approaches_true_kl_as_models_get_closer():
    errors = []
    for eps in (0.4, 0.1, 0.025):
        est, true = _pair(eps, n_texts=3000)
        errors.append(abs(est.kl - true) / true)
        # within sampling error plus the third-order bias that vanishes as eps → 0
        assert abs(est.kl - true) <= 4 * est.se + 2 * eps * true
    assert errors[-1] < 0.05
    assert errors[-1] < errors[0]


def test_estimator_converges_as_n_grows_and_se_is_calibrated():
    eps = 0.05
    zs, ses = [], []
    for n in (500, 4000):
        est, true = _pair(eps, n_texts=n, seed=3)
        zs.append((est.kl - true) / est.se)
        ses.append(est.se / true)
    assert ses[1] < ses[0] / 2.4  # ∝ 1/sqrt(N): ratio sqrt(8) ≈ 2.83
    assert all(abs(z) < 4 for z in zs)


def test_se_matches_spread_over_independent_text_sets():
    """The closed-form SE agrees with the SD of the estimate over replicate text sets (same models)."""
    estimates, ses = [], []
    for text_seed in range(30):
        est, _ = _pair(0.1, n_texts=300, seed=7, text_seed=1000 + text_seed)
        estimates.append(est.kl)
        ses.append(est.se)
    empirical_sd = np.std(estimates, ddof=1)
    # 30 replicates: the SD itself is uncertain by ~13 %; allow a generous but failing-capable band
    assert 0.6 * np.mean(ses) < empirical_sd < 1.6 * np.mean(ses)


def test_make_markov_example_gives_exact_truth_beside_the_matrix():
    ex = lm.make_markov_example(n_families=2, members_per_family=2, n_texts=600, seed=4)
    assert ex.matrix.shape == (4, 600)
    assert ex.true_kl.dims == ("model", "model_")
    mm = lm.ModelMap(ex.matrix)
    z = (mm.kl().values - ex.true_kl.values) / np.where(mm.kl_se().values > 0, mm.kl_se().values, 1)
    assert np.all(np.abs(z[~np.eye(4, dtype=bool)]) < 10)
    assert list(ex.matrix.data["family"].values) == ["family0", "family0", "family1", "family1"]
