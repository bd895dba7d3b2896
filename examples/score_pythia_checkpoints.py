"""
Scoring Pythia checkpoints from the Hugging Face hub
====================================================

This example needs the hub (it is not run when the documentation is built). It scores a few
Pythia-160M training checkpoints on the published 10k Pile texts into a resumable run store,
then maps them. Rerunning it skips the checkpoints already scored.
"""

import loglik_map as lm

texts = lm.TextSet.from_jsonl("texts-10k-pile.jsonl")  # shimo-lab/modelmap's text set
steps = [1000, 2000, 4000, 8000, 16000, 32000, 64000, 143000]
specs = [lm.ModelSpec("EleutherAI/pythia-160m", revision=f"step{s}", name=f"pythia-160m@{s}") for s in steps]

if __name__ == "__main__":  # the guard lets a process-based dask cluster import this file
    summary = lm.score_models(specs, texts, "pythia-160m.store", batch_tokens=16384)
    print(summary)
    matrix = lm.open_matrix("pythia-160m.store").clip(0.02)
    mm = lm.ModelMap(matrix)
    for a, b in zip(matrix.models, matrix.models[1:]):
        print(mm.compare(a, b))
