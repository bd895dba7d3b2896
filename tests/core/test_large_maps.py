"""Large maps: block kernels, exact k-NN, the resumable all-pairs store and dask-backed matrices,
checked against the dense kernels (which the rest of the suite checks against the direct formulas)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loglik_map as lm
from loglik_map.core._kernels import pairwise_kl_se
from loglik_map.core._kernels.blocks import block_kl, block_kl_se, row_block
from loglik_map.core._lazy import exact_quantile
from loglik_map.errors import LoglikMapError

from ..conftest import make_matrix
from ..faults import fake

da = pytest.importorskip("dask.array", reason="large-map tests need the 'parallel' extra (dask)")
ROOT = Path(__file__).resolve().parents[2]


def _with_twins(K=23, N=120, seed=0) -> lm.LogLikelihoodMatrix:
    """A matrix with near-identical rows (KL ~1e-10 of the rows' norms): the guard's hard case."""
    m = make_matrix(K, N, seed=seed)
    L = m.values.copy()
    rng = np.random.default_rng(seed + 1)
    L[5] = L[4] + 1e-4 * rng.normal(size=N)
    L[K - 1] = L[0] + 1e-4 * rng.normal(size=N)  # twins in different blocks
    return lm.LogLikelihoodMatrix(L, models=list(m.models), texts=list(m.texts), n_bytes=m.n_bytes)


def _dense_neighbours(mm: lm.ModelMap, k: int):
    D = mm.kl().values.copy()
    np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(D, order, 1), np.take_along_axis(mm.kl_se().values, order, 1)


# ---------------------------------------------------------------------- block kernels
def test_block_kernels_equal_the_direct_formulas_and_guard_near_identical_pairs():
    X = lm.ModelMap(_with_twins()).points.values
    ref = pairwise_kl_se(X, backend="numpy")
    a, b = row_block(X[:9], 0), row_block(X[9:], 9)
    kl, se, n_direct = block_kl_se(a, b)
    np.testing.assert_allclose(kl, ref.kl[:9, 9:], rtol=1e-12)
    np.testing.assert_allclose(se, ref.se[:9, 9:], rtol=1e-9)
    kl_only, n_kl = block_kl(a, b)
    np.testing.assert_allclose(kl_only, ref.kl[:9, 9:], rtol=1e-12)
    # the (0, 22) twins are in this block pair; unguarded Gram arithmetic misses them by far more
    # than the 1e-8 the kernels promise, so these checks pass only because the guard redid them
    gram = a.n2[0] + b.n2[-1] - 2 * a.rows[0] @ b.rows[-1]
    assert abs(gram / ref.kl[0, 22] - 1) > 1e-8
    assert n_direct >= 1 and n_kl >= 1
    same_kl, same_se, _ = block_kl_se(a, a, same=True)
    np.testing.assert_allclose(same_kl, ref.kl[:9, :9], rtol=1e-12, atol=0)
    np.testing.assert_allclose(same_se, ref.se[:9, :9], rtol=1e-9, atol=0)
    assert np.all(np.diag(same_kl) == 0) and np.array_equal(same_kl, same_kl.T)


# ---------------------------------------------------------------------- k nearest neighbours
@pytest.mark.parametrize("block_size", [4, 7, 64])
def test_neighbours_equal_the_dense_path(block_size):
    mm = lm.ModelMap(_with_twins())
    k = 5
    order, kl, se = _dense_neighbours(mm, k)
    nb = mm.nearest(k=k, block_size=block_size)
    assert nb.kl.dims == ("model", "rank") and list(nb["rank"].values) == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(nb.neighbour.values, mm.models[order])
    np.testing.assert_allclose(nb.kl.values, kl, rtol=1e-9)
    np.testing.assert_allclose(nb.se.values, se, rtol=1e-6)
    assert nb.neighbour.sel(model="m0", rank=1).item() == "m22"  # its near-twin, found across blocks
    nats = mm.nearest(k=k, block_size=block_size, unit="nats")
    np.testing.assert_allclose(nats.kl.values, nb.kl.values * mm.mean_bytes * np.log(2), rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(K=st.integers(3, 14), k=st.integers(1, 6), block=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_neighbours_are_the_k_smallest_kls(K, k, block, seed):
    k = min(k, K - 1)
    mm = lm.ModelMap(make_matrix(K, 40, seed=seed))
    nb = mm.nearest(k=k, block_size=block)
    _order, kl, _ = _dense_neighbours(mm, k)
    np.testing.assert_allclose(nb.kl.values, kl, rtol=1e-9)
    assert np.all(np.diff(nb.kl.values, axis=1) >= 0)
    assert not np.any(nb.neighbour.values == mm.models[:, None])


@pytest.mark.parametrize("block_size", [5, 16, 2048])
def test_tied_neighbours_keep_model_order_with_duplicated_models(block_size):
    """Copies of one model are tied neighbours: they are listed by model position, as the stable
    sort of a dense KL row lists them (argpartition picked an arbitrary copy at the k-th place)."""
    base = make_matrix(25, 60, seed=4)
    rng = np.random.default_rng(0)
    source = np.r_[np.arange(25), rng.integers(0, 25, size=48)]  # 73 rows, most models duplicated
    rng.shuffle(source)
    m = lm.LogLikelihoodMatrix(base.values[source], models=[f"r{i}" for i in range(source.size)],
                               texts=list(base.texts), n_bytes=base.n_bytes)
    mm = lm.ModelMap(m)
    first = {s: int(np.flatnonzero(source == s)[0]) for s in np.unique(source)}
    D = mm.kl().values[:, [first[s] for s in source]]  # every copy gets its first copy's KL: exact ties
    np.fill_diagonal(D, np.inf)
    k = 4
    expected = np.argsort(D, axis=1, kind="stable")[:, :k]
    nb = mm.nearest(k=k, block_size=block_size)
    np.testing.assert_array_equal(nb.neighbour.values, mm.models[expected])


def test_neighbours_refuse_bad_k_and_block_size():
    mm = lm.ModelMap(make_matrix(6, 40))
    for bad in (0, 6, 7, 2.5, True):
        with pytest.raises(LoglikMapError, match="k must be"):
            mm.nearest(k=bad)
    with pytest.raises(LoglikMapError, match="block_size"):
        mm.nearest(k=2, block_size=1)


# ---------------------------------------------------------------------- the all-pairs store
def test_all_pairs_store_equals_dense_kl_and_se(tmp_path):
    mm = lm.ModelMap(_with_twins())
    ds = mm.all_pairs(tmp_path / "p.zarr", block_size=6)
    assert ds.kl.dims == ("model", "model_") and ds.attrs["blocks_done"] == ds.attrs["blocks_total"] == 10
    np.testing.assert_allclose(ds.kl.values, mm.kl().values, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(ds.se.values, mm.kl_se().values, rtol=1e-6, atol=1e-300)
    assert list(ds.model.values) == list(mm.models)
    nats = lm.open_pairs(tmp_path / "p.zarr", unit="nats")
    np.testing.assert_allclose(nats.kl.values, mm.kl(unit="nats").values, rtol=1e-9)
    again = mm.all_pairs(tmp_path / "p.zarr")  # finished: nothing to compute, same answer
    np.testing.assert_array_equal(again.kl.values, ds.kl.values)


def test_progress_follows_the_option_and_a_finished_store_shows_no_bar(tmp_path, capsys):
    pytest.importorskip("tqdm", reason="progress-bar tests need the 'models' extra (tqdm)")
    mm = lm.ModelMap(_with_twins())
    mm.all_pairs(tmp_path / "p.zarr", block_size=6, progress=True)
    assert "10/10" in capsys.readouterr().err  # a bar over the 10 block pairs
    mm.all_pairs(tmp_path / "p.zarr", progress=True)  # nothing left to compute
    assert "block pair" not in capsys.readouterr().err
    with lm.set_options(progress=False):
        mm.nearest(k=2, block_size=6)
    assert capsys.readouterr().err == ""
    mm.nearest(k=2, block_size=6)  # the option's default: a bar
    assert "neighbours" in capsys.readouterr().err


def test_an_interrupted_store_is_refused_then_continued_with_only_the_missing_blocks(tmp_path):
    mm = lm.ModelMap(_with_twins())
    path = tmp_path / "p.zarr"

    def stop_after_three(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mm.all_pairs(path, block_size=6, progress=stop_after_three)
    with pytest.raises(LoglikMapError, match="incomplete: 7 of 10"):
        lm.open_pairs(path)
    partial = lm.open_pairs(path, allow_incomplete=True)
    assert np.isnan(partial.kl.values).any()
    totals = []
    ds = mm.all_pairs(path, progress=lambda done, total: totals.append(total))
    assert set(totals) == {7}
    np.testing.assert_allclose(ds.kl.values, mm.kl().values, rtol=1e-9, atol=1e-300)


def test_store_errors_name_the_problem(tmp_path):
    mm = lm.ModelMap(_with_twins())
    mm.all_pairs(tmp_path / "p.zarr", block_size=6)
    with pytest.raises(LoglikMapError, match="block_size=6"):
        mm.all_pairs(tmp_path / "p.zarr", block_size=8)
    other = lm.ModelMap(_with_twins(seed=3))
    with pytest.raises(LoglikMapError, match="different map"):
        other.all_pairs(tmp_path / "p.zarr")
    fewer = lm.ModelMap(_with_twins().drop_models(["m3"]))
    with pytest.raises(LoglikMapError, match="23 models there, 22 on this map"):
        fewer.all_pairs(tmp_path / "p.zarr")
    other.all_pairs(tmp_path / "p.zarr", overwrite=True)  # replaced on request
    make_matrix(3, 40).save(tmp_path / "m.zarr")
    with pytest.raises(LoglikMapError, match="not an all-pairs store"):
        mm.all_pairs(tmp_path / "m.zarr")
    with pytest.raises(LoglikMapError, match="not an all-pairs store"):
        lm.open_pairs(tmp_path / "m.zarr")
    with pytest.raises(LoglikMapError, match="ending in .zarr"):
        mm.all_pairs(tmp_path / "p.nc")
    with pytest.raises(LoglikMapError, match="no such all-pairs store"):
        lm.open_pairs(tmp_path / "missing.zarr")


_CHILD = """
import sys, time
import numpy as np
import loglik_map as lm
from loglik_map.io import _pairstore as pairstore
sys.path.insert(0, {root!r})
from tests.core.test_large_maps import _with_twins

write = pairstore.PairStore.write
def slow_write(self, *args):
    write(self, *args)
    print("block", flush=True)
    time.sleep(0.3)
pairstore.PairStore.write = slow_write
lm.ModelMap(_with_twins()).all_pairs({path!r}, block_size=6)
print("finished", flush=True)
"""


@pytest.mark.slow
def test_a_killed_run_is_continued(tmp_path):
    path = tmp_path / "p.zarr"
    code = textwrap.dedent(_CHILD.format(root=str(ROOT), path=str(path)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(2):
            assert child.stdout.readline().strip() == "block"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    partial = lm.open_pairs(path, allow_incomplete=True)
    assert 2 <= partial.attrs["blocks_done"] < partial.attrs["blocks_total"]
    mm = lm.ModelMap(_with_twins())
    remaining = []
    ds = mm.all_pairs(path, progress=lambda done, total: remaining.append(total))
    assert remaining and remaining[0] == partial.attrs["blocks_total"] - partial.attrs["blocks_done"]
    np.testing.assert_allclose(ds.kl.values, mm.kl().values, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(ds.se.values, mm.kl_se().values, rtol=1e-6, atol=1e-300)


# ---------------------------------------------------------------------- dask-backed matrices
@pytest.mark.parametrize("q", [0.0, 0.02, 0.5, 0.37, 1 - 1e-9])
def test_the_lazy_clip_quantile_is_numpys_exactly(q):
    rng = np.random.default_rng(1)
    for x in (rng.normal(size=(40, 70)) * 100 - 500, np.round(rng.normal(size=(60, 50))) - 9.0):
        assert exact_quantile(da.from_array(x, chunks=(7, 13)), q) == float(np.quantile(x, q))


def test_open_matrix_with_chunks_is_lazy_and_gives_the_same_map(tmp_path):
    m = _with_twins().assign_model_coords(family=["f"] * 23)
    m.save(tmp_path / "m.zarr")
    lazy = lm.open_matrix(tmp_path / "m.zarr", chunks=5)
    assert type(lazy.data.data).__module__.startswith("dask") and lazy.data.data.chunksize == (5, 120)
    assert lazy.data.identical(m.data)
    assert "not computed" in repr(lazy)
    clipped = lazy.clip()
    assert type(clipped.data.data).__module__.startswith("dask")
    assert clipped.attrs["clip_value_nats"] == m.clip().attrs["clip_value_nats"]
    eager_map, lazy_map = lm.ModelMap(m.clip()), lm.ModelMap(clipped)
    assert type(lazy_map.points.data).__module__.startswith("dask")
    np.testing.assert_allclose(lazy_map.points.values, eager_map.points.values, atol=1e-12)
    np.testing.assert_allclose(lazy_map.text_means.values, eager_map.text_means.values, rtol=1e-12)
    assert lazy_map.compare("m0", "m22").kl == pytest.approx(eager_map.compare("m0", "m22").kl, rel=1e-12)
    nb = lazy_map.nearest(k=3, block_size=6)
    np.testing.assert_array_equal(nb.neighbour.values, eager_map.nearest(k=3).neighbour.values)
    ds = lazy_map.all_pairs(tmp_path / "p.zarr", block_size=6)
    np.testing.assert_allclose(ds.kl.values, eager_map.kl().values, rtol=1e-9, atol=1e-300)


def test_one_row_of_a_lazy_map_is_read_block_by_block_and_equals_the_eager_row(tmp_path):
    m = make_matrix(K=2100, N=40, seed=6)  # more models than one block of rows (2048)
    m.save(tmp_path / "m.zarr")
    lazy = lm.ModelMap(lm.open_matrix(tmp_path / "m.zarr", chunks=300))
    eager = lm.ModelMap(m)
    assert type(lazy.points.data).__module__.startswith("dask")
    for name in ("m0", "m2099"):
        row = lazy.kl(name).values  # the lazy centring differs from the eager one in the last bits
        np.testing.assert_allclose(row, eager.kl(name).values, rtol=1e-12)
        np.testing.assert_allclose(lazy.kl_se(name).values, eager.kl_se(name).values, rtol=1e-12)
        assert row[[3, 2050]].tolist() == [lazy.kl(name, "m3"), lazy.kl(name, "m2050")]  # both blocks
    near = lazy.nearest("m5", k=4)
    np.testing.assert_array_equal(near.model.values, eager.nearest("m5", k=4).model.values)
    tested = lazy.nearest("m5", k=4, test=True)  # from the raw rows: the same bits as the eager map's
    assert tested.identical(eager.nearest("m5", k=4, test=True))


def test_lazy_open_checks_the_checksum_and_refuses_netcdf(tmp_path):
    m = make_matrix(6, 50)
    m.save(tmp_path / "m.zarr")
    m.save(tmp_path / "m.nc")
    chunk = next(p for p in sorted((tmp_path / "m.zarr" / "log_likelihood").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    chunk.write_bytes(bytes(raw))
    with pytest.raises(LoglikMapError, match="corrupt|cannot read"):
        lm.open_matrix(tmp_path / "m.zarr", chunks=2)
    with pytest.raises(LoglikMapError, match="netCDF"):
        lm.open_matrix(tmp_path / "m.nc", chunks=2)
    with pytest.raises(LoglikMapError, match="chunks must be"):
        lm.open_matrix(tmp_path / "m.zarr", chunks="big")


def test_a_run_store_opens_lazily(tmp_path, monkeypatch):
    fake.install(monkeypatch)
    fake.score(tmp_path / "s", ["a", "b", "c", "d"])
    eager = lm.open_matrix(tmp_path / "s")
    lazy = lm.open_matrix(tmp_path / "s", chunks=3)
    assert type(lazy.data.data).__module__.startswith("dask")
    for m in (eager, lazy):
        m.attrs.pop("created")  # the time of opening: the rows' own times differ, so neither keeps one
    assert lazy.data.identical(eager.data)


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_neighbours_and_store(tmp_path):
    distributed = pytest.importorskip("distributed", reason="cluster tests need the 'parallel' extra (dask.distributed)")
    m = _with_twins()
    m.save(tmp_path / "m.zarr")
    eager = lm.ModelMap(m)
    lazy = lm.ModelMap(lm.open_matrix(tmp_path / "m.zarr", chunks=4))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        from_numpy = eager.nearest(k=4, block_size=6, client=client)
        from_dask = lazy.nearest(k=4, block_size=6, client=client)
        ds = lazy.all_pairs(tmp_path / "p.zarr", block_size=6, client=client)
    here = eager.nearest(k=4, block_size=6)
    for nb in (from_numpy, from_dask):
        np.testing.assert_array_equal(nb.neighbour.values, here.neighbour.values)
        np.testing.assert_allclose(nb.kl.values, here.kl.values, rtol=1e-9)  # lazy centring rounds differently
    np.testing.assert_allclose(ds.kl.values, eager.kl().values, rtol=1e-9, atol=1e-300)
