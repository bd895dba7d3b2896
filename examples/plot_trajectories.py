"""
Training trajectories: consecutive KL, diffusion exponents and the Hölder estimate
==================================================================================

A synthetic training run with a known answer: weights W_t perform a Brownian motion
(diffusion exponent c_w = 1) and the log-likelihood vector of checkpoint t is an α-Hölder
Takagi–Landsberg function of W_t with α = 0.3, so the log-likelihood trajectory should diffuse
with c_q ≈ 0.3 and the Hölder estimate should return α ≈ 0.3. With real checkpoints you
replace the two synthetic lines by a scored matrix and :func:`loglik_map.weight_distances`.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

import loglik_map as lm
from loglik_map import plotting

steps = np.arange(0, 121) * 1000  # a checkpoint every 1k steps
W = lm.synthetic.fbm(len(steps) - 1, hurst=0.5, dim=40, seed=0) * 1e-3  # weights: Brownian
Q = lm.synthetic.takagi_landsberg(W, alpha=0.3, dim_out=2000, n_terms=30, seed=1)  # one column per text
matrix = lm.LogLikelihoodMatrix(-700 + 40 * Q, models=[f"ckpt@{s}" for s in steps],
                                texts=[f"t{k}" for k in range(2000)], n_bytes=np.full(2000, 972),
                                model_coords={"step": steps})

# %%
# The dozen lines: consecutive KL (Fig. 4), displacement and c(t0) for log-likelihoods and
# weights (Fig. 5), and the Hölder estimate.
traj_q = lm.Trajectory(lm.ModelMap(matrix), order="step")
traj_w = lm.Trajectory.from_distances(((W[:, None] - W[None]) ** 2).sum(-1), steps, unit="weights²")
fit_q = traj_q.diffusion_exponent(t0=20000, window=10)
fit_w = traj_w.diffusion_exponent(t0=20000, window=10)
print(fit_q)
print(fit_w)
print(lm.holder_exponent(fit_q, fit_w))

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
plotting.plot_step_kl(traj_q.step_kl(), ax=axes[0])
plotting.plot_displacement(traj_q, 20000, window=10, ax=axes[1])
plotting.plot_diffusion_exponents(traj_q.diffusion_exponents(window=10), traj_w.diffusion_exponents(window=10),
                                  ax=axes[2])
fig.tight_layout()

# %%
# The KL scale (Table 1a) for this run, selected as the paper does: pairs exactly 1,000 steps
# apart ending after step 2,000, the first 50 and the last 50, measured on the matrix
# preprocessed as the paper's pretraining runs (clip at 2 %, 3 % outlier texts dropped, B̄ of the
# kept texts). The ``preprocessing`` column says what each setting was measured on.
pre = lm.PretrainingPreprocessing()
early = lm.consecutive_checkpoints("step", interval=1000, after=2000, first=50)
late = lm.consecutive_checkpoints("step", interval=1000, after=2000, last=50)
table = lm.kl_scale(matrix, {"consecutive checkpoints, first 50k steps": lm.KLSetting(early, pre),
                             "consecutive checkpoints, last 50k steps": lm.KLSetting(late, pre)})
print(table[["count", "median", "mean", "sd", "median_se", "paper_median"]].to_string())
print(table.loc["consecutive checkpoints, last 50k steps", "preprocessing"])
plt.show()
