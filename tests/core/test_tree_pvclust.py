"""ModelMap.tree against the reference implementation, R's pvclust (Suzuki and Shimodaira 2006).

Needs ``Rscript`` with the package pvclust (Debian: ``r-base-core``, ``r-cran-pvclust``); skipped
with that reason when they are absent.

* ``msfit`` is deterministic: given the same bootstrap counts, pvclust's fit and ours must agree to
  rounding.
* The bootstrap is random: with ``metric="euclidean"`` and average linkage our tree is pvclust's on
  the texts × models matrix with Euclidean distance between model columns centred over the drawn
  texts (the map distance up to a factor common to all pairs of a replicate), so the clades must
  be the same and AU/BP must agree within Monte-Carlo error; ``metric="kl"`` is the same with
  that distance squared. Both sides report the Monte-Carlo
  standard error of each p-value (msfit's delta-method ``se.au``/``se.bp``, from the binomial
  variance of the counts); the two runs are independent, so their difference has SD
  √(se_R² + se_ours²). We allow 4 such SDs (per-clade false alarm 6e-5; < 1e-3 for the 5 clades),
  plus 0.002 for clades whose BP is within 0.001 of 1 at some scales (msfit then drops those
  scales, and the two runs may drop different ones). Measured on these data (R 3000, ours 10000
  replicates per scale): AU 0.899 ± 0.008 vs 0.898 ± 0.005 and 0.710 ± 0.016 vs 0.713 ± 0.009.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import loglik_map as lm


def _has_pvclust() -> bool:
    if shutil.which("Rscript") is None:
        return False
    done = subprocess.run(["Rscript", "-e", "library(pvclust)"], capture_output=True, timeout=120)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _has_pvclust(), reason="needs Rscript with the R package pvclust "
                                "(Debian: r-base-core r-cran-pvclust)")


def _rscript(code: str, cwd) -> None:
    done = subprocess.run(["Rscript", "-e", code], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def _example() -> lm.ModelMap:
    """Six models: two tight pairs, a model between a pair and a third one: AU from 0.7 to 1."""
    rng = np.random.default_rng(3)
    N = 80
    g = rng.normal(size=(3, N))
    X = np.vstack([g[0] + 0.9 * rng.normal(size=N), g[0] + 0.9 * rng.normal(size=N),
                   g[1] + 1.0 * rng.normal(size=N), g[1] + 1.1 * rng.normal(size=N), g[2] + 1.3 * rng.normal(size=N),
                   0.5 * g[0] + 0.5 * g[2] + 1.2 * rng.normal(size=N)]) - 300.0
    m = lm.LogLikelihoodMatrix(X, models=[f"m{i}" for i in range(6)], texts=[f"t{k}" for k in range(N)],
                               n_bytes=rng.integers(300, 1000, size=N))
    return lm.ModelMap(m)


def test_the_multiscale_fit_is_pvclusts_msfit(tmp_path):
    tree = _example().tree(metric="euclidean", n_boot=200, seed=0, progress=False)
    counts = tree.counts.values
    pd.DataFrame(counts).to_csv(tmp_path / "counts.csv", index=False, header=False)
    np.savetxt(tmp_path / "r.csv", tree.scales, delimiter=",")
    _rscript("""
        library(pvclust)
        counts <- as.matrix(read.csv("counts.csv", header = FALSE))
        r <- scan("r.csv", quiet = TRUE)
        rows <- lapply(seq_len(nrow(counts)), function(i) {
          a <- pvclust:::msfit(counts[i, ] / 200, r, 200)
          c(a$p[c("au", "bp", "si")], a$se[c("au", "bp", "si")], a$coef, pchi = a$pchi)
        })
        write.csv(do.call(rbind, rows), "fit.csv", row.names = FALSE)
    """, tmp_path)
    theirs = pd.read_csv(tmp_path / "fit.csv")
    ours = tree.clades[["au", "bp", "si", "au_se", "bp_se", "si_se", "v", "c", "pchi"]].to_numpy()
    np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=1e-7, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize(("metric", "power", "r_boot"), [("euclidean", 1, 1000), ("kl", 2, 600)])
def test_average_tree_is_pvclusts(tmp_path, metric, power, r_boot):
    """``metric="kl"`` is the same with pvclust's distance squared (KL is the squared map distance)."""
    mm = _example()
    L = mm.matrix.values
    np.savetxt(tmp_path / "x.csv", L.T, delimiter=",")  # pvclust clusters the columns: texts × models
    _rscript(f"""
        library(pvclust)
        x <- as.matrix(read.csv("x.csv", header = FALSE))
        colnames(x) <- paste0("m", 0:(ncol(x) - 1))
        centred <- function(x) dist(t(scale(x, center = TRUE, scale = FALSE)))^{power}
        res <- pvclust(x, method.hclust = "average", method.dist = centred, nboot = {r_boot}, iseed = 1,
                       quiet = TRUE)
        members <- pvclust:::hc2split(res$hclust)$member
        out <- data.frame(members = sapply(members, function(m) paste(colnames(x)[m], collapse = "|")),
                          res$edges, height = res$hclust$height)
        write.csv(out, "pvclust.csv", row.names = FALSE)
        write.csv(data.frame(r = res$r), "r.csv", row.names = FALSE)
    """, tmp_path)
    theirs = pd.read_csv(tmp_path / "pvclust.csv").set_index("members")
    tree = mm.tree(metric=metric, n_boot=4000, seed=1, progress=False)
    ours = tree.clades.assign(members=tree.clades.members.map("|".join)).set_index("members")
    assert set(ours.index) == set(theirs.index)
    theirs = theirs.loc[ours.index]
    np.testing.assert_allclose(tree.scales, pd.read_csv(tmp_path / "r.csv").r, rtol=1e-12)
    # the same tree: heights are the centred Euclidean distances over sqrt(2 N B̄ ln 2) (squared for KL)
    factor = np.sqrt(2 * mm.n_texts * mm.mean_bytes * np.log(2)) ** power
    np.testing.assert_allclose(ours.height * factor, theirs.height, rtol=1e-9)
    for p in ("au", "bp"):
        sd = np.hypot(ours[f"{p}_se"], theirs[f"se.{p}"])
        gap = np.abs(ours[p] - theirs[p])
        assert (gap <= 4 * sd + 0.002).all(), pd.DataFrame({"ours": ours[p], "pvclust": theirs[p], "sd": sd})
