"""The all-pairs store's checksums: damage is found on open and repaired on resume; overwrite is
kill-safe and never deletes what is not an all-pairs store; disk errors name the store (issue 27,
items 8 and 13)."""

from __future__ import annotations

import errno
import shutil
import warnings

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.errors import DataIntegrityWarning, LoglikMapError

from ..conftest import make_matrix

pytest.importorskip("dask.array", reason="all-pairs stores need the 'parallel' extra (dask)")
zarr = pytest.importorskip("zarr", reason="all-pairs stores need the 'io' extra (zarr)")


@pytest.fixture
def finished(tmp_path):
    mm = lm.ModelMap(make_matrix(13, 60, seed=4))
    path = tmp_path / "p.zarr"
    mm.all_pairs(path, block_size=5, progress=False)  # 3 × 3 blocks, 6 block pairs
    return mm, path


def _chunks(path, name="kl"):
    return sorted(p for p in (path / name).rglob("*") if p.is_file() and p.name != "zarr.json")


def _flip(chunk):
    raw = bytearray(chunk.read_bytes())
    for k in range(len(raw) // 2, len(raw) // 2 + 8):
        raw[k] ^= 0xFF
    chunk.write_bytes(bytes(raw))


def _truncate(chunk):
    chunk.write_bytes(chunk.read_bytes()[: len(chunk.read_bytes()) // 2])


@pytest.mark.parametrize("damage", [_flip, _truncate, lambda c: c.unlink()], ids=["flipped", "truncated", "deleted"])
def test_a_damaged_block_is_refused_when_read_and_recomputed_on_resume(finished, damage):
    mm, path = finished
    damage(_chunks(path)[1])
    ds = lm.open_pairs(path)  # lazy: the header is fine
    with pytest.raises(LoglikMapError, match=r"p\.zarr' is damaged: block pair \(\d, \d\).*recompute"):
        ds.kl.compute()
    with pytest.warns(DataIntegrityWarning, match="1 damaged block pairs"):
        again = mm.all_pairs(path, progress=False)
    np.testing.assert_allclose(again.kl.values, mm.kl().values, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(lm.open_pairs(path).se.values, mm.kl_se().values, rtol=1e-6, atol=1e-300)


def test_damaged_names_or_attributes_are_refused_on_open_and_resume(finished):
    mm, path = finished
    group = zarr.open_group(path, mode="r+")
    group.attrs["mean_bytes"] = float(group.attrs["mean_bytes"]) * 1000  # shrinks nats 1000×
    for call in (lambda: lm.open_pairs(path, unit="nats"), lambda: mm.all_pairs(path, progress=False)):
        with pytest.raises(LoglikMapError, match="no longer match their checksum.*overwrite=True"):
            call()
    mm.all_pairs(path, overwrite=True, progress=False)
    shutil.rmtree(path / "model")  # labels became '0', '1', …
    with pytest.raises(LoglikMapError, match="model names cannot be read"):
        lm.open_pairs(path)


def test_a_damaged_block_index_entry_counts_as_not_done(finished):
    mm, path = finished
    _truncate(_chunks(path, "block_digest")[0])
    with pytest.raises(LoglikMapError, match="incomplete: 1 of 6"):
        lm.open_pairs(path)
    again = mm.all_pairs(path, progress=False)
    np.testing.assert_allclose(again.kl.values, mm.kl().values, rtol=1e-9, atol=1e-300)


def test_overwrite_builds_aside_and_keeps_the_old_store_if_stopped(finished):
    _, path = finished
    before = lm.open_pairs(path).kl.values
    other = lm.ModelMap(make_matrix(13, 60, seed=5))

    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        other.all_pairs(path, overwrite=True, block_size=5, progress=stop)
    np.testing.assert_array_equal(lm.open_pairs(path).kl.values, before)  # the old store, whole
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".p.zarr.") and "lock" not in p.name] == []
    new = other.all_pairs(path, overwrite=True, progress=False)
    np.testing.assert_allclose(new.kl.values, other.kl().values, rtol=1e-9, atol=1e-300)


def test_a_saved_matrix_is_never_offered_for_deletion(tmp_path):
    mm = lm.ModelMap(make_matrix(6, 40))
    saved = tmp_path / "m.zarr"
    make_matrix(3, 40).save(saved)
    for overwrite in (False, True):
        with pytest.raises(LoglikMapError, match="a matrix saved by loglik_map") as err:
            mm.all_pairs(saved, overwrite=overwrite, progress=False)
        assert "pass overwrite=True" not in str(err.value)
    assert lm.open_matrix(saved).identical(make_matrix(3, 40))


def test_a_full_disk_names_the_store(tmp_path, monkeypatch):
    mm = lm.ModelMap(make_matrix(6, 40))
    real_set = zarr.storage.LocalStore.set

    async def full(self, key, value, *args, **kwargs):
        if key.startswith(("c/", "kl/c")):  # a chunk of kl or se
            raise OSError(errno.ENOSPC, "No space left on device")
        return await real_set(self, key, value, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(LoglikMapError, match=r"p\.zarr'.*no space left"):
            mm.all_pairs(tmp_path / "p.zarr", block_size=3, progress=False)
