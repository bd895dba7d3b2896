"""
Scaling out: hundreds of models on a dask cluster
=================================================

Every model is one job; each worker writes only its own rows into the shared run store, so a
killed job or a failed model loses nothing, and rerunning the script continues where it stopped.
``score_models`` takes any ``concurrent.futures`` executor; a dask cluster's
``client.get_executor()`` is one.

One model per GPU is the natural unit. On one node with several GPUs, dask-cuda's
``LocalCUDACluster`` starts one worker per GPU and pins it there (``CUDA_VISIBLE_DEVICES``), so
every scorer sees "its" GPU as ``cuda:0``. On a cluster, dask-jobqueue submits the workers as
batch jobs (SLURM, PBS, LSF, …), each asking for one GPU. Install what you use:
``pip install dask-cuda`` or ``pip install dask-jobqueue``.

Not run when the docs are built (it needs GPU workers and the hub).
"""

import sys

import loglik_map as lm


def cluster(kind: str):
    """A dask cluster with one worker per GPU: ``local`` (this node) or ``slurm``."""
    if kind == "local":
        from dask_cuda import LocalCUDACluster

        return LocalCUDACluster(threads_per_worker=1)  # one worker per visible GPU
    if kind == "slurm":
        from dask_jobqueue import SLURMCluster

        jobs = SLURMCluster(cores=8, processes=1, memory="64GB", walltime="04:00:00",
                            job_extra_directives=["--gres=gpu:1"])
        jobs.scale(jobs=16)  # 16 GPUs, one model at a time on each
        return jobs
    raise SystemExit(f"unknown cluster kind {kind!r}; use 'local' or 'slurm'")


if __name__ == "__main__":  # process-based clusters import this file in every worker
    from dask.distributed import Client

    with cluster(sys.argv[1] if len(sys.argv) > 1 else "local") as gpus, Client(gpus) as client:
        steps = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512] + list(range(1000, 144000, 1000))
        specs = [lm.ModelSpec("EleutherAI/pythia-1b", revision=f"step{s}", name=f"pythia-1b@{s}") for s in steps]
        texts = lm.TextSet.from_jsonl("texts-10k-pile.jsonl")
        # float16, as the published data: its spurious KL against float32 is ~1e-5 bits/byte
        summary = lm.score_models(specs, texts, "/shared/pythia-1b.store", executor=client.get_executor(),
                                  loading=lm.scoring.Loading(dtype="float16"))
        print(summary)  # failed checkpoints are listed; rerun to retry them
