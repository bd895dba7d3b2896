"""Saved matrices are checked on open: checksums, format version, units, damaged files, interrupted saves."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from filelock import FileLock

import loglik_map as lm
from loglik_map.errors import DataIntegrityWarning
from loglik_map.io import _storage

from ..conftest import needs_storage

needs_storage()


def _value_bytes_offset(raw: bytes, matrix: lm.LogLikelihoodMatrix) -> int:
    """Where the log-likelihoods start in an uncompressed netCDF file."""
    pos = raw.find(matrix.values.tobytes()[:32])
    assert pos > 0
    return pos


def _chunk_files(store: Path, variable: str = "log_likelihood") -> list[Path]:
    return sorted(p for p in (store / variable).rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray"))


def test_saved_file_records_format_and_checksum_but_attrs_round_trip(matrix, tmp_path):
    matrix.save(tmp_path / "ll.nc")
    with xr.open_dataset(tmp_path / "ll.nc") as ds:
        assert ds.attrs["loglik_map_format"] == 1
        assert str(ds.attrs["loglik_map_checksum"]).startswith("sha256:")
    back = lm.open_matrix(tmp_path / "ll.nc")
    assert "loglik_map_checksum" not in back.attrs and back.identical(matrix)


@pytest.mark.parametrize("flip", [0, 5, 7])
def test_a_flipped_byte_in_a_netcdf_file_is_refused_naming_it(matrix, tmp_path, flip):
    path = tmp_path / "ll.nc"
    matrix.save(path)
    raw = bytearray(path.read_bytes())
    raw[_value_bytes_offset(bytes(raw), matrix) + 8 * 17 + flip] ^= 0x04
    path.write_bytes(bytes(raw))
    with pytest.raises(lm.LoglikMapError, match=r"ll\.nc.* is corrupt.*verify=False"):
        lm.open_matrix(path)
    if flip == 7:  # the exponent byte: -1e22 nats, which the matrix's own validation refuses too
        with pytest.raises(lm.LoglikMapError, match="below -10000 nats per byte"):
            lm.open_matrix(path, verify=False)
        return
    changed = lm.open_matrix(path, verify=False)  # on request: read as it is
    assert (changed.values != matrix.values).sum() == 1


def test_a_changed_label_is_caught_by_the_checksum(matrix, tmp_path):
    path = tmp_path / "ll.nc"
    matrix.save(path)
    raw = path.read_bytes()
    assert raw.count(b"t299") >= 1
    path.write_bytes(raw.replace(b"t299", b"t2x9"))
    with pytest.raises(lm.LoglikMapError, match="corrupt"):
        lm.open_matrix(path)


def test_a_flipped_byte_in_a_zarr_chunk_is_refused_naming_it(matrix, tmp_path):
    path = tmp_path / "ll.zarr"
    matrix.save(path)
    for k, chunk in enumerate(_chunk_files(path)):
        raw = bytearray(chunk.read_bytes())
        raw[len(raw) // 2 + k] ^= 0x10
        chunk.write_bytes(bytes(raw))
    with pytest.raises(lm.LoglikMapError, match=r"ll\.zarr"):
        lm.open_matrix(path)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_truncated_or_garbled_files_give_an_error_naming_the_file(matrix, tmp_path, suffix):
    path = tmp_path / f"ll{suffix}"
    matrix.save(path)
    if suffix == ".nc":
        path.write_bytes(path.read_bytes()[:2000])
    else:
        (path / "zarr.json").write_text('{"zarr_format": 3, "node_t', encoding="utf-8")
    with pytest.raises(lm.LoglikMapError, match=rf"cannot read .*ll\{suffix}.*damaged.*backup"):
        lm.open_matrix(path)
    if suffix == ".zarr":
        matrix.save(tmp_path / "b.zarr")
        for chunk in _chunk_files(tmp_path / "b.zarr"):
            chunk.unlink()  # a missing chunk reads as fill values: the checksum catches it
        with pytest.raises(lm.LoglikMapError, match=r"b\.zarr"):
            lm.open_matrix(tmp_path / "b.zarr")


def _rewrite_attrs(path: Path, **attrs) -> None:
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    ds.attrs.update(attrs)
    for key, value in attrs.items():
        if value is None:
            del ds.attrs[key]
    os.unlink(path)
    ds.to_netcdf(path)


def test_units_are_checked_bits_converted_others_refused(matrix, tmp_path):
    path = tmp_path / "ll.nc"
    matrix.save(path)
    # a file written by another tool: no format version or checksum, units as it says
    _rewrite_attrs(path, units="bits", loglik_map_format=None, loglik_map_checksum=None)
    m = lm.open_matrix(path)
    np.testing.assert_allclose(m.values, matrix.values * np.log(2), rtol=1e-15)
    assert m.attrs["units"] == "nats" and m.attrs["units_converted_from"] == "bits"
    _rewrite_attrs(path, units="bits/byte")
    with pytest.raises(lm.LoglikMapError, match="units 'bits/byte'.*nats"):
        lm.open_matrix(path)
    _rewrite_attrs(path, units=None)
    with pytest.raises(lm.LoglikMapError, match="no 'units'"):
        lm.open_matrix(path)


def test_a_changed_attribute_is_caught_by_the_checksum(matrix, tmp_path):
    path = tmp_path / "ll.nc"
    m = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_attrs(convention="reference"))
    m.save(path)
    path.write_bytes(path.read_bytes().replace(b"reference", b"referenCe"))
    with pytest.raises(lm.LoglikMapError, match="corrupt.*attributes"):
        lm.open_matrix(path)
    m.save(path, overwrite=True)
    _rewrite_attrs(path, units="bits")
    with pytest.raises(lm.LoglikMapError, match="corrupt"):
        lm.open_matrix(path)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_attributes_of_every_kind_round_trip_under_the_checksum(matrix, tmp_path, suffix):
    attrs = {"one": ["x"], "ints": [1, 2], "f": 0.1, "whole": 3.0, "i": 7, "s": "naïve ✓", "nan": float("nan")}
    m = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_attrs(**attrs))
    m.save(tmp_path / f"ll{suffix}")
    back = lm.open_matrix(tmp_path / f"ll{suffix}")
    assert back.attrs["s"] == "naïve ✓" and np.isnan(back.attrs["nan"])


def test_a_file_from_a_newer_format_is_refused(matrix, tmp_path):
    path = tmp_path / "ll.nc"
    matrix.save(path)
    _rewrite_attrs(path, loglik_map_format=2)
    with pytest.raises(lm.LoglikMapError, match="newer loglik_map.*upgrade"):
        lm.open_matrix(path)
    _rewrite_attrs(path, loglik_map_format="one")
    with pytest.raises(lm.LoglikMapError, match="format version"):
        lm.open_matrix(path)
    _rewrite_attrs(path, loglik_map_format=1, loglik_map_checksum=None)
    with pytest.raises(lm.LoglikMapError, match="lost its checksum"):
        lm.open_matrix(path)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_files_saved_before_checksums_still_open(matrix, tmp_path, suffix):
    """What earlier versions wrote: the dataset without format and checksum attributes."""
    from loglik_map.io._format import to_dataset as _to_dataset

    path = tmp_path / f"old{suffix}"
    ds = _to_dataset(matrix)
    ds.to_netcdf(path) if suffix == ".nc" else ds.to_zarr(path, consolidated=False)
    assert lm.open_matrix(path).identical(matrix)


def test_a_save_in_progress_makes_a_second_saver_fail_clearly(matrix, tmp_path):
    path = tmp_path / "ll.nc"
    held = FileLock(tmp_path / ".ll.nc.lock")
    with held:
        with pytest.raises(lm.LoglikMapError, match="another process is saving"):
            matrix.save(path)
    assert not path.exists() and not _storage.siblings(path, "partial")
    matrix.save(path)
    assert lm.open_matrix(path).identical(matrix)


def test_save_into_a_missing_folder_says_so(matrix, tmp_path):
    with pytest.raises(lm.LoglikMapError, match="folder .* does not exist"):
        matrix.save(tmp_path / "no" / "ll.nc")


def test_an_interrupted_zarr_replacement_is_rolled_back_on_open(matrix, tmp_path):
    """The state a kill between 'old store renamed aside' and 'new store renamed in' leaves."""
    path = tmp_path / "ll.zarr"
    matrix.save(path)
    aside = _storage.temp_sibling(path, "old")
    os.rename(path, aside)
    matrix.isel(model=[0]).save(_storage.temp_sibling(path, "partial").with_suffix(".zarr"))  # some half-new data
    with pytest.warns(DataIntegrityWarning, match="interrupted.*restored"):
        back = lm.open_matrix(path)
    assert back.identical(matrix) and not aside.exists()


def test_the_next_save_clears_what_an_interrupted_save_left(matrix, tmp_path):
    path = tmp_path / "ll.zarr"
    matrix.save(path)
    stale_aside = _storage.temp_sibling(path, "old")  # killed after the new data were renamed in
    matrix.save(tmp_path / "x.zarr")
    os.rename(tmp_path / "x.zarr", stale_aside)
    dead_partial = _storage.temp_sibling(path, "partial")
    dead_partial.mkdir()
    other = _storage.temp_sibling(tmp_path / "other.zarr", "partial")  # another target's writer: not ours
    other.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataIntegrityWarning)
        matrix.isel(model=[1]).save(path, overwrite=True)
    assert not stale_aside.exists() and not dead_partial.exists() and other.exists()
    assert list(lm.open_matrix(path).models) == ["m1"]


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_failed_write_replaces_nothing_and_names_the_file(matrix, tmp_path, suffix, monkeypatch):
    path = tmp_path / f"ll{suffix}"
    matrix.save(path)
    import errno

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("loglik_map.io._files.write_netcdf" if suffix == ".nc" else "loglik_map.io._files.write_zarr", disk_full)
    with pytest.raises(lm.LoglikMapError, match=rf"ll\{suffix}.*no space left.*Nothing was replaced"):
        matrix.isel(model=[0]).save(path, overwrite=True)
    assert lm.open_matrix(path).identical(matrix)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [path.name]


@pytest.mark.parametrize("label", ["nul\x00inside", "lone\ud800surrogate"])
def test_labels_that_cannot_be_stored_are_refused_when_the_matrix_is_built(label):
    with pytest.raises(lm.LoglikMapError, match="valid text|NUL|surrogate"):
        lm.LogLikelihoodMatrix([[-1.0]], models=[label], texts=["a"], n_bytes=[300])


# ---------------------------------------------------------------------- reads racing saves (issue 27, item 11)
def test_a_lazy_matrix_refuses_to_read_a_store_replaced_since_it_was_opened(matrix, tmp_path):
    pytest.importorskip("dask.array", reason="lazy matrices need the 'parallel' extra (dask)")
    path = tmp_path / "m.zarr"
    lm.LogLikelihoodMatrix(matrix.values, models=list(matrix.models), texts=list(matrix.texts), n_bytes=matrix.n_bytes,
                           cell_coords={"n_tokens": np.ones(matrix.shape)}).save(path)
    lazy = lm.open_matrix(path, chunks=2)
    np.testing.assert_array_equal(lazy.values, matrix.values)  # reads fine while nothing changed
    np.testing.assert_array_equal(lazy.data["n_tokens"].values, np.ones(matrix.shape))
    other = lm.LogLikelihoodMatrix(matrix.values - 1.0, models=list(matrix.models), texts=list(matrix.texts),
                                   n_bytes=matrix.n_bytes)
    other.save(path, overwrite=True)
    with pytest.raises(lm.LoglikMapError, match="replaced or removed after it was opened"):
        lazy.values  # noqa: B018 - computing is the point
    np.testing.assert_array_equal(lm.open_matrix(path, chunks=2).values, other.values)  # reopened: the new data


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_an_eager_read_overlapped_by_a_save_is_retried_not_called_corrupt(matrix, tmp_path, monkeypatch, suffix):
    from loglik_map.io import _files as files

    path = tmp_path / f"m{suffix}"
    matrix.save(path)
    other = lm.LogLikelihoodMatrix(matrix.values - 1.0, models=list(matrix.models), texts=list(matrix.texts),
                                   n_bytes=matrix.n_bytes)
    real, raced = files.read_dataset, []

    def racing(p, fmt, **kw):
        ds = real(p, fmt, **kw)
        if not raced and Path(p) == path:
            raced.append(True)
            other.save(path, overwrite=True)  # a save lands while we read ...
            ds["log_likelihood"][0, 0] += 1.0  # ... so what we read mixes old and new
        return ds

    monkeypatch.setattr(files, "read_dataset", racing)
    got = lm.open_matrix(path)
    assert raced and np.array_equal(got.values, other.values)


# ---------------------------------------------------------------------- lock files (issue 27, item 13)
def test_lock_files_do_not_pile_up_beside_saved_paths(matrix, tmp_path):
    for name in ("a.nc", "b.zarr"):
        matrix.save(tmp_path / name)
        matrix.save(tmp_path / name, overwrite=True)
        lm.open_matrix(tmp_path / name)
    pytest.importorskip("dask.array", reason="all-pairs stores need the 'parallel' extra (dask)")
    lm.ModelMap(matrix).all_pairs(tmp_path / "p.zarr", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc", "b.zarr", "p.zarr"]


_LOCK_CHILD = """
import sys, time
from pathlib import Path
from loglik_map.io._storage import lock_file
target, rounds = Path(sys.argv[1]), int(sys.argv[2])
counter = target.with_name("counter")
for _ in range(rounds):
    lock = lock_file(target)
    lock.acquire(timeout=60, poll_interval=0.001)
    try:
        inside = target.with_name("inside")
        inside.mkdir()  # fails if another process is inside too
        n = int(counter.read_text()) if counter.exists() else 0
        time.sleep(0.0005)
        counter.write_text(str(n + 1))
        inside.rmdir()
    finally:
        lock.release()
"""


def test_a_lock_that_deletes_its_file_still_excludes(tmp_path):
    import subprocess
    import sys

    from ..faults.harness import REPO

    script = tmp_path / "child.py"
    script.write_text(_LOCK_CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "m.nc"), "20"], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert (tmp_path / "counter").read_text() == "60"
    assert not (tmp_path / ".m.nc.lock").exists()


def test_a_lazy_open_overlapped_by_a_save_is_retried_and_gives_the_new_matrix(matrix, tmp_path, monkeypatch):
    pytest.importorskip("dask.array", reason="lazy matrices need the 'parallel' extra (dask)")
    from loglik_map.io import _lazy

    path = tmp_path / "m.zarr"
    matrix.save(path)
    other = lm.LogLikelihoodMatrix(matrix.values[::-1] - 1.0, models=[f"x{i}" for i in range(matrix.n_models)],
                                   texts=list(matrix.texts), n_bytes=matrix.n_bytes)
    real, raced = _lazy._stream_checksum_and_validate, []

    def racing(ds, p, verify):
        if not raced:  # the metadata were read from the old store; a save lands before its values are
            raced.append(True)
            other.save(path, overwrite=True)
        return real(ds, p, verify)

    monkeypatch.setattr(_lazy, "_stream_checksum_and_validate", racing)
    for verify in (True, False):
        raced.clear()
        matrix.save(path, overwrite=True)
        got = lm.open_matrix(path, chunks=2, verify=verify)
        assert raced and list(got.models) == list(other.models)
        np.testing.assert_array_equal(got.values, other.values)


_SAVER = """
import sys, time
from pathlib import Path
from tests.faults.child import matrix
path, saves = Path(sys.argv[1]), int(sys.argv[2])
ms = [matrix(1), matrix(2)]
print("ready", flush=True)
for n in range(saves):
    ms[n % 2].save(path, overwrite=True)
    time.sleep(0.05)  # the reader gets turns even on a loaded machine
print(saves, flush=True)
"""


@pytest.mark.slow
def test_reads_racing_saves_give_one_saved_matrix_never_corrupt_or_mixed(tmp_path, suffix=".zarr"):
    # a smoke test of real processes (a few saves per second here, so few overlaps); the
    # deterministic overlap tests above are the ones that failed before the retry loop
    import subprocess
    import sys

    from ..faults import child
    from ..faults.harness import REPO

    path = tmp_path / f"m{suffix}"
    child.matrix(1).save(path)
    saved = {m.attrs["saver"]: m for m in (child.matrix(1), child.matrix(2))}
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    saver = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), "8"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert saver.stdout.readline().strip() == "ready", saver.stderr.read()
    reads, errors = 0, []
    while saver.poll() is None:
        for lazy in ((False, True) if suffix == ".zarr" else (False,)):
            try:
                got = lm.open_matrix(path, chunks=2) if lazy else lm.open_matrix(path)
                values = got.values
            except lm.LoglikMapError as err:
                if not (lazy and "replaced" in str(err)):  # a lazy matrix may outlive its store
                    errors.append(str(err))
                continue
            want = saved[got.attrs["saver"]]
            assert list(got.models) == list(want.models) and np.array_equal(values, want.values)
            reads += 1
    out, err = saver.communicate(timeout=30)
    assert saver.returncode == 0, err
    assert out.split()[-1] == "8" and reads >= 1, (out, reads)
    assert errors == [], (len(errors), reads, errors[:2])
