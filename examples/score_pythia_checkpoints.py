"""
Scoring Pythia checkpoints from the Hugging Face hub
====================================================

This example needs the hub (it is not run when the documentation is built). It scores
Pythia-160M training checkpoints on the published 10k Pile texts into a resumable run store,
then preprocesses them as the paper does (:func:`loglik_map.preprocess_pretraining`: exclude
anomalous checkpoints → clip at 2 % → drop the 3 % of texts whose log-likelihood jumps most
between consecutive checkpoints after step 2,000 → B̄ over the kept texts), prints what was
dropped and why, and measures the trajectory: consecutive KL and diffusion exponents over
windows of 10 checkpoint-grid slots. Rerunning it skips the checkpoints already scored.
"""

import loglik_map as lm

texts = lm.TextSet.from_jsonl("texts-10k-pile.jsonl")  # shimo-lab/modelmap's text set
steps = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512] + list(range(1000, 31000, 1000))  # Pythia's saving schedule
specs = [lm.ModelSpec("EleutherAI/pythia-160m", revision=f"step{s}", name=f"pythia-160m@{s}") for s in steps]

if __name__ == "__main__":  # the guard lets a process-based dask cluster import this file
    summary = lm.score_models(specs, texts, "pythia-160m.store", execution=lm.scoring.Execution(batch_tokens=16384))
    print(summary)
    raw = lm.open_matrix("pythia-160m.store")
    step_of = {f"pythia-160m@{s}": s for s in steps}
    raw = lm.LogLikelihoodMatrix.from_dataarray(
        raw.data.assign_coords(step=("model", [step_of[m] for m in raw.models])))
    # for Pythia-1B the paper also passes exclude=["pythia-1b@116000"] (anomalous weights)
    prep = lm.preprocess_pretraining(raw, after=2000)
    print(prep)
    print(prep.dropped.head(10).to_string())
    traj = prep.trajectory()  # excluded checkpoints stay excluded: never bridged, no window reaches past them
    print(traj.step_kl().to_dataframe()[["step", "step_next", "kl", "se"]].to_string())
    exps = traj.diffusion_exponents(window=10, min_start=1000)  # the paper's Fig. 5: next 10 grid slots
    print(exps.to_dataframe()[["t0", "exponent", "r2", "n_points", "reason"]].to_string())
