"""
The paper's figures in one call each: labelled maps, KL heat maps, the logit lens, exponents with intervals
===========================================================================================================

Every figure here is one call of :mod:`loglik_map.plotting` on built-in data: Markov-chain
"language models" whose exact KL is known (:func:`loglik_map.make_markov_example`), a synthetic
training run, and the logit lens of a miniature model trained on CPU (the fast setting of
:mod:`loglik_map.demo`; trained once, then cached: a minute or two the first time on 2 CPU cores).
Figures made by these functions keep their labels and colour bars inside when saved.
"""

# %%
import numpy as np

import loglik_map as lm
from loglik_map import demo, plotting

example = lm.make_markov_example(n_families=3, members_per_family=3, n_texts=600, seed=0)
mm = lm.ModelMap(example.matrix)
mm  # in a notebook: a table of sizes, unit and provenance

# %%
# Every pair in one tidy table: KL, SE, 95 % interval and unit (the first rows):
mm.summary().head()

# %%
# The map with every model named, coloured by family (Fig. 2 of the paper):
ax = plotting.plot_map(mm, color="family", labels=True)

# %%
# The KL matrix as a heat map, models in the order of a hierarchical clustering on map
# distances: the three families form blocks.
ax = plotting.plot_kl_matrix(mm)

# %%
# Diffusion exponents c(t0) along a synthetic training run (a Brownian walk: c = 1), each with
# its 95 % interval as a band (Fig. 5, right):
steps = np.arange(0, 61) * 1000
walk = -800 + np.cumsum(np.random.default_rng(0).normal(size=(61, 400)), axis=0)
run = lm.LogLikelihoodMatrix(walk, models=[f"ckpt@{s}" for s in steps], texts=[f"t{k}" for k in range(400)],
                             n_bytes=np.full(400, 1000), model_coords={"step": steps})
exponents = lm.Trajectory(run).diffusion_exponents(window=10)
ax = plotting.plot_diffusion_exponents(exponents)

# %%
# The logit lens of a miniature model: KL from every layer's read-out to the final layer, with
# ±SE bands (the built-in texts; the zoo's fast setting is trained once and cached).
zoo = demo.build_zoo(config=demo.ZooConfig.fast(), progress=False)
texts = lm.load_texts("mini").sample(80, seed=0)
final = zoo.final(zoo.run_names[0])
lens = lm.LogitLensScorer(str(final), name="neox-s", execution=lm.scoring.Execution(progress=False)).score(texts)
ax = plotting.plot_logit_lens(lm.ModelMap(lens.clip(0.02)))
