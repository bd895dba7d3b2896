"""
Which groups are real? Trees with AU p-values
=============================================

A dendrogram of a model map is a picture; :meth:`~loglik_map.ModelMap.tree` makes it a finding.
Every clade gets an approximately unbiased (AU) p-value from a multiscale bootstrap over the
texts (pvclust's method): AU ≥ 0.95 says the texts support the group, AU < 0.05 rejects it.

The models here are Markov chains standing in for a small model zoo — checkpoints of one run,
other seeds, 8- and 4-bit copies, two fine-tunes, and a second architecture — so every log-
likelihood is exact and the grouping is known. One model card is wrong on purpose: it names the
first run as the base of a model of the second architecture.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import loglik_map as lm
from loglik_map.plotting import plot_tree
from loglik_map.synthetic import MarkovChainModel

rng = np.random.default_rng(0)
alphabet = "abcdefgh "
S = len(alphabet)
data = rng.normal(size=(S, S))  # the chain the texts come from
arch = {"A": data + 0.3 * rng.normal(size=(S, S)), "B": data + 0.3 * rng.normal(size=(S, S))}


def noise(scale):
    return scale * rng.normal(size=(S, S))


final = arch["A"] + noise(0.08)  # run A, seed 0: checkpoints converging on its final model
logits = {"A-seed0@1000": final + noise(0.1), "A-seed0@2000": final + noise(0.05),
          "A-seed0@3000": final + noise(0.025), "A-seed0@4000": final,
          "A-seed0@4000[8bit]": final + noise(0.01), "A-seed0@4000[4bit]": final + noise(0.02),
          "A-seed0-chat": final + noise(0.06), "A-seed0-code": final + noise(0.06),  # fine-tunes
          "A-seed1": arch["A"] + noise(0.08), "A-seed2": arch["A"] + noise(0.08)}  # other seeds
logits |= {"B-seed0": (b := arch["B"] + noise(0.08)), "B-seed0[8bit]": b + noise(0.01),
           "B-seed1": arch["B"] + noise(0.08)}
models = [MarkovChainModel.from_logits(alphabet, z, name) for name, z in logits.items()]
source = MarkovChainModel.from_logits(alphabet, data, "data")
lengths = rng.integers(256, 1025, size=300)
texts = source.sample(300, lengths, seed=rng)
matrix = lm.LogLikelihoodMatrix(np.vstack([m.log_likelihood(texts) for m in models]), models=list(logits),
                                texts=[lm.texts.text_id(t) for t in texts], n_bytes=lengths)
mm = lm.ModelMap(matrix)

# %%
# The tree and its p-values
# -------------------------
# 1000 replicates at each of 10 scales; on the map distance √KL, UPGMA (average linkage).

tree = mm.tree(metric="euclidean", n_boot=1000, seed=0, progress=False)
print(tree)
print(tree.clades[["members", "au", "bp", "au_se"]].round(3).to_string())

fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
plot_tree(tree, max_only=False, ax=ax)
plt.show()

# %%
# Reading it: the quantized copies sit with their original, checkpoints join the run in order,
# both architectures are clades with AU ≈ 1. The two other seeds of A do not form a group of
# their own (AU well below 0.95): the three seeds are about equally far apart, and the texts
# cannot tell which two are closer. ``tree.significant()`` lists the supported clades.

# %%
# Model cards: which lineages do the texts reject?
# ------------------------------------------------
# ``lm.io.lineage(models)`` reads ``base_model`` from the cards; here the table is written by hand,
# with one wrong card.

cards = pd.DataFrame({"model": ["A-seed0-chat", "A-seed0-code", "A-seed0@4000[8bit]", "A-seed0@4000[4bit]",
                                "B-seed1"],
                      "parent": ["A-seed0@4000"] * 4 + ["A-seed0@4000"]})
tree = mm.tree(metric="euclidean", n_boot=1000, seed=0, progress=False, clades=cards)
print(tree.check_lineage()[["members", "au", "rejected"]])
