"""
Scaling out: hundreds of models on a dask cluster
=================================================

Every model is one job; each worker writes only its own rows into the shared run store, so a
killed job or a failed model loses nothing, and rerunning the script continues where it stopped.
Not run when the docs are built (it needs GPU workers and the hub).
"""

import loglik_map as lm

if __name__ == "__main__":  # process-based clusters import this file in every worker
    from dask.distributed import Client

    client = Client("tcp://scheduler:8786")  # or LocalCluster(n_workers=..., processes=True)
    steps = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512] + list(range(1000, 144000, 1000))
    specs = [lm.ModelSpec("EleutherAI/pythia-1b", revision=f"step{s}", name=f"pythia-1b@{s}") for s in steps]
    texts = lm.TextSet.from_jsonl("texts-10k-pile.jsonl")
    summary = lm.score_models(specs, texts, "/shared/pythia-1b.store", executor=client.get_executor(),
                              dtype="bfloat16", batch_tokens=65536)
    print(summary)  # failed checkpoints are listed; rerun to retry them
