"""Large maps (issue #16): exact k-NN and blocked all-pairs, here and on a dask LocalCluster.

Run by hand (not a test), one at a time, e.g.:

    python benchmarks/bench_large.py knn --models 40000 --texts 1000
    python benchmarks/bench_large.py knn-cluster --models 100000 --texts 2000 --workers 2
    python benchmarks/bench_large.py store --models 10000 --texts 1000
    python benchmarks/bench_large.py block-cost --texts 10000
    python benchmarks/bench_large.py ann --models 40000 --texts 1000      # needs faiss-cpu

The synthetic matrix has the paper's structure (text difficulty ∝ bytes, families sharing a
low-rank component, members differing by noise, a few near-identical twins) and is generated
row block by row block into a Zarr store, so no K × N temporaries beyond the matrix itself.
Peak memory is the process's high-water mark (VmHWM; for workers, ru_maxrss). Agreement: for
``--check`` random models, the k-NN result is compared with the per-model dense path
(:meth:`ModelMap.nearest`, direct evaluation against every model).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import rss_kib

ROWS = 4096


def synthetic_store(path: Path, K: int, N: int, seed: int = 0) -> None:
    """Write a K × N matrix with the paper's structure to ``path`` (Zarr), row block by row block."""
    import loglik_map as lm

    rng = np.random.default_rng(seed)
    n_bytes = rng.integers(257, 1025, size=N)
    text_effect = -n_bytes * rng.uniform(0.4, 0.9, size=N)
    n_fam = max(K // 10, 1)
    fam_factors = rng.normal(size=(n_fam, 16))
    text_factors = rng.normal(size=(16, N))
    first = None
    for s in range(0, K, ROWS):
        e = min(s + ROWS, K)
        r = np.random.default_rng([seed, s])
        fam = r.integers(0, n_fam, size=e - s)
        L = text_effect[None, :] + 6.0 * (fam_factors[fam] @ text_factors) / 4
        L += r.normal(scale=3.0, size=(e - s, N))
        L[1::997] = L[0:-1:997][: L[1::997].shape[0]] + r.normal(scale=0.04, size=L[1::997].shape)  # twins
        L -= r.uniform(0, 50, size=(e - s, 1))
        m = lm.LogLikelihoodMatrix(L, models=[f"m{i}" for i in range(s, e)], texts=[f"t{k}" for k in range(N)],
                                   n_bytes=n_bytes)
        ds = m.data.to_dataset(name="log_likelihood", promote_attrs=True)
        if first is None:
            ds.to_zarr(path, mode="w-", consolidated=False, encoding={"log_likelihood": {"chunks": (ROWS, N)}})
            first = True
        else:
            ds.to_zarr(path, append_dim="model", consolidated=False)


def open_lazy(path: Path, chunks: int):
    """The synthetic store as a dask-backed matrix (it has no checksum: written directly by xarray)."""
    import loglik_map as lm

    return lm.open_matrix(path, chunks=chunks, verify=False)


def agreement(mm, nb, n_check: int, k: int) -> dict:
    rng = np.random.default_rng(1)
    picks = rng.choice(len(mm), size=n_check, replace=False)
    worst_kl = worst_se = 0.0
    same = 0
    for i in picks:
        name = mm.models[i]
        ref = mm.nearest(name, k)
        got = nb.sel(model=name)
        same += int(np.array_equal(ref.model.values, got.neighbour.values))
        worst_kl = max(worst_kl, float(np.max(np.abs(got.kl.values / ref.values - 1))))
        worst_se = max(worst_se, float(np.max(np.abs(got.se.values / ref["se"].values - 1))))
    return {"checked_models": n_check, "identical_neighbour_lists": same, "max_rel_err_kl": worst_kl,
            "max_rel_err_se": worst_se}


def knn_local(args) -> dict:
    import loglik_map as lm

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "L.zarr"
        t0 = time.perf_counter()
        synthetic_store(path, args.models, args.texts)
        t_gen = time.perf_counter() - t0
        base = rss_kib("VmRSS")
        t0 = time.perf_counter()
        mm = lm.ModelMap(open_lazy(path, args.chunk))
        t_map = time.perf_counter() - t0
        t0 = time.perf_counter()
        nb = mm.nearest(k=args.k, block_size=args.block)
        t_knn = time.perf_counter() - t0
        peak = rss_kib("VmHWM")
        out = {"mode": "knn (here)", "K": args.models, "N": args.texts, "k": args.k, "block": args.block,
               "generate_s": round(t_gen, 1), "open_and_centre_s": round(t_map, 1), "knn_s": round(t_knn, 1),
               "total_s": round(t_map + t_knn, 1), "peak_rss_GiB": round(peak / 2**20, 2),
               "rss_before_GiB": round(base / 2**20, 2), "pairs_direct": nb.attrs["pairs_evaluated_directly"]}
        out.update(agreement(mm, nb, args.check, args.k))
    return out


def _worker_peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (Linux: KiB)


def knn_cluster(args) -> dict:
    from distributed import Client, LocalCluster

    import loglik_map as lm

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "L.zarr"
        t0 = time.perf_counter()
        synthetic_store(path, args.models, args.texts)
        t_gen = time.perf_counter() - t0
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit=None) as cluster, Client(cluster) as client:
            t0 = time.perf_counter()
            mm = lm.ModelMap(open_lazy(path, args.chunk))
            t_map = time.perf_counter() - t0
            t0 = time.perf_counter()
            nb = mm.nearest(k=args.k, block_size=args.block, client=client)
            t_knn = time.perf_counter() - t0
            peaks = client.run(_worker_peak)
        n_blocks = -(-args.models // args.block)
        pairs = n_blocks * (n_blocks + 1) // 2
        out = {"mode": f"knn (LocalCluster, {args.workers} workers x 1 thread)", "K": args.models, "N": args.texts,
               "k": args.k, "block": args.block, "generate_s": round(t_gen, 1), "open_and_centre_s": round(t_map, 1),
               "knn_s": round(t_knn, 1), "block_pairs": pairs,
               "worker_seconds_per_block_pair": round(t_knn * args.workers / pairs, 3),
               "peak_rss_per_worker_GiB": [round(v, 2) for v in peaks.values()],
               "client_peak_rss_GiB": round(rss_kib("VmHWM") / 2**20, 2)}
        out.update(agreement(mm, nb, args.check, args.k))
    return out


def store(args) -> dict:
    import loglik_map as lm

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "L.zarr"
        synthetic_store(path, args.models, args.texts)
        mm = lm.ModelMap(open_lazy(path, args.chunk))
        t0 = time.perf_counter()
        ds = mm.all_pairs(Path(tmp) / "pairs.zarr", block_size=args.block)
        t_pairs = time.perf_counter() - t0
        peak = rss_kib("VmHWM")
        size = sum(p.stat().st_size for p in (Path(tmp) / "pairs.zarr").rglob("*") if p.is_file())
        sub = mm.matrix.isel(model=slice(0, 1000))
        dense = lm.ModelMap(sub)
        kl = ds.kl.isel(model=slice(0, 1000), model_=slice(0, 1000)).values
        se = ds.se.isel(model=slice(0, 1000), model_=slice(0, 1000)).values
        off = ~np.eye(1000, dtype=bool)
        return {"mode": "all pairs to Zarr (here)", "K": args.models, "N": args.texts, "block": args.block,
                "all_pairs_s": round(t_pairs, 1), "peak_rss_GiB": round(peak / 2**20, 2),
                "store_GiB": round(size / 2**30, 2),
                "max_rel_err_kl_first_1000": float(np.max(np.abs(kl[off] / dense.kl().values[off] - 1))),
                "max_rel_err_se_first_1000": float(np.max(np.abs(se[off] / dense.kl_se().values[off] - 1)))}


def block_cost(args) -> dict:
    """Seconds for one k-NN block pair and one all-pairs block pair at N texts (one process)."""
    from loglik_map.core._kernels.blocks import block_kl_se, row_block
    from loglik_map.core._neighbours import _candidates

    rng = np.random.default_rng(0)
    a = row_block(rng.normal(size=(args.block, args.texts)) * 0.01, 0)
    b = row_block(rng.normal(size=(args.block, args.texts)) * 0.01, args.block)
    _candidates(a, b, False, args.k, "numba")  # compile / warm up
    t_knn, t_pairs = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        _candidates(a, b, False, args.k, "numba")
        t_knn.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        block_kl_se(a, b)
        t_pairs.append(time.perf_counter() - t0)
    return {"mode": "block cost", "N": args.texts, "block": args.block, "knn_block_pair_s": round(min(t_knn), 3),
            "all_pairs_block_pair_s": round(min(t_pairs), 3)}


def ann(args) -> dict:
    """faiss HNSW and IVF on Q̃ (float32): build + query time and recall@k against the exact k-NN."""
    import faiss

    import loglik_map as lm

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "L.zarr"
        synthetic_store(path, args.models, args.texts)
        mm = lm.ModelMap(open_lazy(path, args.chunk))
        X = np.ascontiguousarray(mm.points.values, dtype=np.float32)
        t0 = time.perf_counter()
        exact = mm.nearest(k=args.k, block_size=args.block)
        t_exact = time.perf_counter() - t0
        index_of = {name: i for i, name in enumerate(mm.models)}
        truth = np.vectorize(index_of.__getitem__)(exact.neighbour.values)
        rows = []
        for name, make in (("faiss HNSW32 efSearch=128", lambda d: faiss.IndexHNSWFlat(d, 32)),
                           ("faiss IVF-Flat nlist=1024 nprobe=32", None)):
            t0 = time.perf_counter()
            if make is not None:
                index = make(X.shape[1])
                index.hnsw.efConstruction = 80
                index.add(X)
                index.hnsw.efSearch = 128
            else:
                quant = faiss.IndexFlatL2(X.shape[1])
                index = faiss.IndexIVFFlat(quant, X.shape[1], 1024)
                index.train(X[np.random.default_rng(0).choice(len(X), size=min(len(X), 64 * 1024), replace=False)])
                index.add(X)
                index.nprobe = 32
            t_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            _, found = index.search(X, args.k + 1)
            t_query = time.perf_counter() - t0
            found = np.array([[j for j in row if j != i][: args.k] for i, row in enumerate(found)])
            recall = np.mean([len(set(f) & set(t)) / args.k for f, t in zip(found, truth)])
            rows.append({"index": name, "build_s": round(t_build, 1), "query_all_s": round(t_query, 1),
                         "total_s": round(t_build + t_query, 1), "recall_at_k": round(float(recall), 4)})
        return {"mode": "approximate index vs exact", "K": args.models, "N": args.texts, "k": args.k,
                "exact_knn_s": round(t_exact, 1), "indexes": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["knn", "knn-cluster", "store", "block-cost", "ann"])
    ap.add_argument("--models", type=int, default=40000)
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--chunk", type=int, default=ROWS, help="models per dask chunk when opening the matrix")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--check", type=int, default=50, help="models checked against the dense per-model path")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tmp", default=None, help="folder for the temporary stores")
    args = ap.parse_args()
    fn = {"knn": knn_local, "knn-cluster": knn_cluster, "store": store, "block-cost": block_cost, "ann": ann}[args.mode]
    print(json.dumps(fn(args), indent=1))


if __name__ == "__main__":
    main()
