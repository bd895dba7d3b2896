"""
Quickstart on the built-in data: score a model suite, map it, read the KL scale
===============================================================================

Everything here runs offline: the built-in ``mini`` texts, a miniature model suite trained on
CPU (its fast setting; ``lm.demo.ZooConfig()`` is the full one the demo uses), the resumable
scorer, and the map. It takes about two minutes on 2 busy CPU cores (half a minute to train,
the rest to score 13 models on 150 texts), less on an idle machine.
"""

# %%
import tempfile

import loglik_map as lm
from loglik_map import demo

texts = lm.load_texts("mini").sample(150, seed=42)
print(texts)
suite = demo.build_zoo(tempfile.mkdtemp(), demo.ZooConfig.fast(), progress=False)

# %%
# Score every model into a run store (rerunning skips what is finished), then map it.
store = tempfile.mkdtemp() + "/scores.store"
summary = lm.score_models(suite.specs(quantization=(), logit_lens=False), texts, store, progress=False)
print(summary)
matrix = suite.annotate(lm.open_matrix(store)).clip(0.02)
mm = lm.ModelMap(matrix)
print(f"text entropy ≈ {matrix.entropy():.2f} bits/byte")

# %%
# Two seeds of the same model at the final checkpoint, with a 95 % interval:
a, b = "neox-s-seed0@24", "neox-s-seed1@24"
est = mm.compare(a, b)
print(est, est.confidence_interval(0.95))

# %%
# The KL scale of a few settings, beside the paper's values:
scale = lm.kl_scale(mm, {
    "random seeds": lm.differing_only_in("seed", by=("arch", "size", "step")),
    "model sizes": lm.differing_only_in("size", by=("arch", "seed", "step")),
    "fine-tuned vs base": lm.child_vs_parent("base_model"),
    "consecutive checkpoints, last 50k steps": lm.consecutive_checkpoints("step", by="run", after=12),
})
scale[["count", "median", "median_se", "paper_median"]]  # shown as a table (print(scale.to_string()) in a script)

# %%
# The map itself, with the checkpoint trajectory of the first run:
from loglik_map import plotting

first = matrix.where_models(run="neox-s-seed0", base_model="")
ax = plotting.plot_map(mm, color="family", trajectory=lm.Trajectory(lm.ModelMap(first)))
