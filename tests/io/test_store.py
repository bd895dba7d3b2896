"""The run store's layout, locking and integrity, with a torch-free stand-in scorer."""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
import pytest
import xarray as xr
from filelock import FileLock

import loglik_map as lm
from loglik_map.errors import DataIntegrityWarning
from loglik_map.io import _runstore as st
from loglik_map.io import _storage
from loglik_map.io._runstore import layout, writing

from ..conftest import needs_storage
from ..faults import fake

needs_storage(".zarr")  # run stores are Zarr


@pytest.fixture(autouse=True)
def _fake_scoring(monkeypatch):
    fake.install(monkeypatch)


def _same_rows(m: lm.LogLikelihoodMatrix, names: list[str]) -> None:
    want = fake.expected(names)
    assert list(m.models) == names and list(m.texts) == list(want.texts)
    np.testing.assert_array_equal(m.values, want.values)


def _row(store, label):
    return st.row_path(store, label)


def _flip_chunk_bytes(row) -> None:
    for chunk in sorted(p for p in (row / "log_likelihood").rglob("*") if p.is_file() and p.name != "zarr.json"):
        raw = bytearray(chunk.read_bytes())
        raw[len(raw) // 2] ^= 0x20
        chunk.write_bytes(bytes(raw))


def test_rows_missing_from_the_manifest_are_still_found(tmp_path):
    """Earlier versions could drop a finished model from the manifest (unlocked updates)."""
    store = tmp_path / "s"
    fake.score(store, ["a", "b", "c"])
    manifest = json.loads((store / st.MANIFEST).read_text())
    manifest["models"] = ["a"]
    (store / st.MANIFEST).write_text(json.dumps(manifest))
    _same_rows(lm.open_matrix(store), ["a", "b", "c"])
    summary = fake.score(store, ["a", "b", "c", "d"])
    assert summary.skipped == ("a", "b", "c") and summary.scored == ("d",)
    _same_rows(lm.open_matrix(store), ["a", "b", "c", "d"])


def test_a_damaged_row_is_named_skipped_and_rescored_next_run(tmp_path):
    store = tmp_path / "s"
    fake.score(store, ["a", "b", "c"])
    _flip_chunk_bytes(_row(store, "b"))
    with pytest.warns(DataIntegrityWarning, match=r"model 'b'.*damaged.*scores them again"):
        m = lm.open_matrix(store)
    _same_rows(m, ["a", "c"])
    assert m.attrs["damaged_models_skipped"] == ["b"]
    with pytest.warns(DataIntegrityWarning, match=r"model 'b' were damaged.*corrupt.*scored again"):
        summary = fake.score(store, ["a", "b", "c"])
    assert summary.scored == ("b",) and summary.skipped == ("a", "c")
    assert len(list((store / "corrupt").iterdir())) == 1  # kept for inspection, out of the way
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataIntegrityWarning)
        _same_rows(lm.open_matrix(store), ["a", "b", "c"])


def test_an_unreadable_row_is_skipped_not_fatal(tmp_path):
    store = tmp_path / "s"
    fake.score(store, ["a", "b"])
    (_row(store, "a") / "zarr.json").write_text("{garbage", encoding="utf-8")
    with pytest.warns(DataIntegrityWarning, match="model 'a'"):
        _same_rows(lm.open_matrix(store), ["b"])


def test_rows_written_before_checksums_still_open(tmp_path):
    store = tmp_path / "s"
    fake.score(store, ["a", "b"])
    row = _row(store, "a")
    with xr.open_zarr(row, consolidated=False) as ds:
        ds = ds.load()
    del ds.attrs["loglik_map_checksum"], ds.attrs["loglik_map_format"]
    _storage.remove_path(row)
    ds.to_zarr(row, consolidated=False)  # as the previous version wrote rows
    _same_rows(lm.open_matrix(store), ["a", "b"])
    assert fake.score(store, ["a", "b"]).skipped == ("a", "b")


def test_store_format_and_manifest_are_checked(tmp_path):
    store = tmp_path / "s"
    fake.score(store, ["a", "b"])
    path = store / st.MANIFEST
    good = path.read_text()
    path.write_text(good.replace('"format": 1', '"format": 99'))
    with pytest.raises(lm.LoglikMapError, match="newer loglik_map.*upgrade"):
        lm.open_matrix(store)
    with pytest.raises(lm.LoglikMapError, match="newer loglik_map"):
        fake.score(store, ["a"])
    path.write_text(good[: len(good) // 2])  # truncated JSON
    with pytest.warns(DataIntegrityWarning, match=r"manifest .*damaged"):
        _same_rows(lm.open_matrix(store), ["a", "b"])
    with pytest.warns(DataIntegrityWarning, match="rebuilt"):
        assert fake.score(store, ["a", "b", "c"]).scored == ("c",)
    assert json.loads(path.read_text())["models"] == ["a", "b", "c"]
    with pytest.raises(lm.LoglikMapError, match="different text set"):
        lm.score_models([lm.ModelSpec("fake", name="a")], fake.TEXTS[:5], store, progress=False)


@pytest.mark.parametrize("leftover", ["lock only", "texts temporary", "texts written", "manifest temporary"])
def test_a_store_whose_set_up_was_killed_is_recognised_and_completed(tmp_path, leftover):
    store = tmp_path / "s"
    store.mkdir()
    (store / st.LOCK).touch()  # a lock file, as any initialiser creates first
    if leftover == "texts temporary":
        (store / ".texts.0123.zarr").mkdir()
    elif leftover == "texts written":
        writing._texts_dataset(lm.TextSet(fake.TEXTS)).to_zarr(store / "texts.zarr", consolidated=False)
    elif leftover == "manifest temporary":
        (store / f".{st.MANIFEST}.0123.tmp").write_text("{")
    with pytest.raises(lm.LoglikMapError, match="set-up was interrupted.*rerun score_models"):
        lm.open_matrix(store)
    assert fake.score(store, ["a"]).scored == ("a",)
    _same_rows(lm.open_matrix(store), ["a"])
    assert sorted(p.name for p in store.iterdir()) == sorted(
        ["claims", "failures", "models", "texts.zarr", st.MANIFEST, st.LOCK])


def test_a_folder_that_is_not_a_store_is_left_alone(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "thesis.tex").write_text("precious")
    with pytest.raises(lm.LoglikMapError, match="not a loglik_map run store"):
        fake.score(tmp_path / "s", ["a"])
    assert os.listdir(tmp_path / "s") == ["thesis.tex"]


def test_a_live_writers_temporary_is_not_cleaned_but_a_dead_ones_is(tmp_path):
    store = tmp_path / "s"
    fake.score(store, ["a"])
    models = store / "models"
    live, dead = models / ".x.zarr.live.partial", models / ".y.zarr.dead.partial"
    live.mkdir(), dead.mkdir()
    old_style = models / f".{st.row_key('z')}.0123.partial"  # what earlier versions left
    old_style.mkdir()
    holder = FileLock(models / ".x.zarr.live.partial.lock")
    with holder:
        fake.score(store, ["a", "b"])
        assert live.exists() and not dead.exists() and not old_style.exists()
    fake.score(store, ["a", "b"])
    assert not live.exists() and not [p for p in models.iterdir() if p.name.startswith(".")]


def test_the_store_lock_times_out_with_a_clear_error(tmp_path, monkeypatch):
    store = tmp_path / "s"
    fake.score(store, ["a"])
    monkeypatch.setattr(layout, "LOCK_WAIT", 0.05)
    with FileLock(store / st.LOCK):
        with pytest.raises(lm.LoglikMapError, match="stayed locked.*loglik_map_store.lock"):
            fake.score(store, ["a", "b"])


def test_scorer_settings_of_a_run_are_checked_before_anything_is_written(tmp_path):
    from loglik_map.scoring import Execution, Windowing

    with pytest.raises(lm.LoglikMapError, match="batch_tokens must be a positive integer"):
        fake.score(tmp_path / "s", ["a"], execution=Execution(batch_tokens=-1))
    with pytest.raises(TypeError, match="convetion"):
        fake.score(tmp_path / "s", ["a"], windowing=Windowing(convetion="bos"))
    with pytest.raises(lm.errors.WrongTypeError, match=r"Execution\(\*\*execution\)"):
        fake.score(tmp_path / "s", ["a"], execution={"batch_tokens": 8})
    assert not (tmp_path / "s").exists()


def test_a_run_without_zarr_names_the_io_extra_before_writing(tmp_path, monkeypatch):
    # before: xarray's own ImportError from deep inside to_zarr, after the store folder was made
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if zarr were not installed
    with pytest.raises(lm.errors.MissingExtraError, match=r"needs zarr.*loglik_map\[io\]"):
        fake.score(tmp_path / "s", ["a"])
    assert not (tmp_path / "s").exists()


def test_model_names_starting_with_a_dot_are_stored_found_and_skipped_on_rerun(tmp_path):
    # a row file named after ".hidden" started with "." and was skipped as a temporary: scored,
    # then missing from open_matrix, pending forever in info, yet "finished" on a rerun
    names = [".hidden", "../../x", "...", ".", "a"]
    specs = [lm.ModelSpec(f"m{i}", name=n) for i, n in enumerate(names)]
    store = tmp_path / "store"
    first = lm.score_models(specs, lm.TextSet(fake.TEXTS), store, progress=False)
    assert first.ok and sorted(first.scored) == sorted(names)
    assert all(not p.name.startswith(".") for p in (store / "models").iterdir())
    _same_rows(lm.open_matrix(store), names)
    again = lm.score_models(specs, lm.TextSet(fake.TEXTS), store, progress=False)
    assert sorted(again.skipped) == sorted(names) and not again.scored
    assert not (tmp_path / "x").exists() and not any(tmp_path.parent.glob("x*"))


def test_a_row_from_another_text_set_is_named_and_rescored(tmp_path):
    store, other = tmp_path / "store", tmp_path / "other"
    lm.score_models(["a", "b"], lm.TextSet(fake.TEXTS), store, progress=False)
    lm.score_models(["c"], lm.TextSet(fake.TEXTS[:30]), other, progress=False)
    os.rename(_row(other, "c"), _row(store, "c"))  # copied in by hand
    with pytest.raises(lm.LoglikMapError, match="model 'c'.*another set of texts"):
        lm.open_matrix(store)
    with pytest.warns(DataIntegrityWarning, match="another set of texts"):
        summary = lm.score_models(["a", "b", "c"], lm.TextSet(fake.TEXTS), store, progress=False)
    assert summary.scored == ("c",)
    _same_rows(lm.open_matrix(store), ["a", "b", "c"])
