"""
Quickstart: a model map with KL divergences and standard errors
===============================================================

We generate a small "zoo" of Markov-chain language models whose KL divergences are known
exactly, score texts with them, and recover those divergences from the log-likelihood matrix
alone — the same steps you take with real language models.
"""

# %%
# A log-likelihood matrix
# -----------------------
# :func:`loglik_map.make_markov_example` returns a :class:`loglik_map.LogLikelihoodMatrix`
# (models × texts, nats) together with the exact KL between every pair of models.
import numpy as np

import loglik_map as lm

example = lm.make_markov_example(n_families=3, members_per_family=3, n_texts=2000, seed=0)
matrix = example.matrix
print(matrix)

# %%
# The text-entropy estimate (bits/byte) gives the scale on which to read a KL.
print(f"text entropy ≈ {matrix.entropy():.3f} bits/byte")

# %%
# The map
# -------
# Double-centring and scaling make squared distances KL divergences in bits/byte.
mm = lm.ModelMap(matrix)
kl = mm.kl()
se = mm.kl_se()
print(kl.round(4).to_pandas())

# %%
# One pair, with its standard error and a 95 % confidence interval:
est = mm.compare("family0-member0", "family1-member0")
print(est)
print("95% CI:", est.confidence_interval(0.95))
print("exact:", float(example.true_kl.sel(model="family0-member0", model_="family1-member0")))

# %%
# Estimate against truth
# ----------------------
import matplotlib.pyplot as plt

iu = np.triu_indices(len(mm), 1)
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.errorbar(example.true_kl.values[iu], kl.values[iu], yerr=se.values[iu], fmt="o", ms=4)
lim = [0, kl.values.max() * 1.05]
ax.plot(lim, lim, color="grey", lw=1)
ax.set_xlabel("exact KL (bits/byte)")
ax.set_ylabel("map estimate ± SE (bits/byte)")
ax.set_title("Model-map KL vs exact KL")
fig.tight_layout()

# %%
# A 2-D view of the map
# ---------------------
emb = mm.embed("pca", n_components=2)
fig, ax = plt.subplots(figsize=(4.5, 4))
for fam in np.unique(emb["family"].values):
    sel = emb["family"].values == fam
    ax.scatter(emb.values[sel, 0], emb.values[sel, 1], label=fam)
ax.set_xlabel("PC 1")
ax.set_ylabel("PC 2")
ax.legend()
fig.tight_layout()
plt.show()
