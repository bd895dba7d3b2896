"""Fault injection: kill -9 during saves and scoring, concurrent savers and scorers, flipped bits,
truncated files, a full disk. Every fault must leave the data that were saved (or were there
before) readable, never return wrong data or report success without it, and report every
failure as a LoglikMapError; no process may crash. ``benchmarks/fault_injection.py`` runs the
same scenarios many more times (the table in ``benchmarks/RESULTS.md``).

Each scenario starts fresh interpreters (``subprocess``; never a fork of the test process).
"""

from __future__ import annotations

import os
import random

import pytest

from ..conftest import needs_storage
from . import fake, scenarios

needs_storage()

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.name != "posix", reason="SIGKILL and RLIMIT_FSIZE are POSIX")]


def _check(out: scenarios.Outcome, folder=None) -> None:
    assert not out.crashed, out.detail
    assert not out.lost, out.detail
    assert not out.silent, out.detail
    assert not out.unclear, out.detail
    if folder is not None:
        assert scenarios._clean(folder)


@pytest.mark.parametrize(("suffix", "point"), [(".nc", "save-mid-write"), (".zarr", "save-before-commit"),
                                               (".zarr", "save-after-aside"), (".zarr", "save-before-aside-delete")])
def test_a_save_killed_at_any_point_leaves_the_old_or_the_new_data(tmp_path, suffix, point):
    _check(scenarios.kill_during_save(tmp_path, suffix, point))


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_random_kills_while_saving_never_lose_a_completed_save(tmp_path, suffix):
    _check(scenarios.random_kill_during_saves(tmp_path, suffix, random.Random(suffix)))


@pytest.mark.parametrize(("suffix", "overwrite"), [(".zarr", False), (".nc", True)])
def test_concurrent_savers_one_wins_the_others_are_told(tmp_path, suffix, overwrite):
    out = scenarios.concurrent_savers(tmp_path, suffix, overwrite)
    _check(out, tmp_path)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_full_disk_fails_the_save_cleanly_and_keeps_the_old_data(tmp_path, suffix):
    """RLIMIT_FSIZE makes writes fail like a full disk; h5py used to segfault after such an error."""
    _check(scenarios.full_disk_save(tmp_path, suffix), tmp_path)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_flipped_bits_and_truncations_are_refused_never_misread(tmp_path, suffix):
    out, counts = scenarios.damage(tmp_path, suffix, trials=40, seed=4)
    _check(out)
    assert counts["flip"]["refused"] > 0 and counts["truncate"]["refused"] > 0, counts


@pytest.fixture
def _fake(monkeypatch):
    fake.install(monkeypatch)


@pytest.mark.usefixtures("_fake")
@pytest.mark.parametrize("point", ["while scoring", "init-before-manifest", "row-before-rename"])
def test_a_scoring_run_killed_anywhere_resumes_to_the_full_matrix(tmp_path, point):
    _check(scenarios.kill_during_scoring(tmp_path, point))
    assert scenarios._clean(tmp_path / "s" / "models")


@pytest.mark.usefixtures("_fake")
def test_concurrent_scorers_on_one_new_store_lose_nothing(tmp_path):
    _check(scenarios.concurrent_scorers(tmp_path, n=3))


@pytest.mark.usefixtures("_fake")
def test_concurrent_runs_never_score_one_model_twice(tmp_path):
    """Three runs on one store, all asked for the same four models at the same instant: every model
    is scored exactly once (a claim per model), nothing is lost, and a run that met a model
    another process was scoring says so instead of scoring it again."""
    from . import harness

    store, log = tmp_path / "s", tmp_path / "scorings.log"
    names = ["a", "b", "c", "d"]
    env = {"FAKE_SCORE_SECONDS": "0.4", "FAKE_SCORE_LOG": str(log)}
    procs = harness.start_together([["score", store, "--models", *names] for _ in range(3)], tmp_path / "go", env=env)
    results = [harness.finish(p) for p in procs]
    assert all(rc == 0 for rc, _, _ in results), [err[-500:] for _, _, err in results]
    scorings = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(scorings) == names  # each model once, whichever process took it
    assert len({line.split()[1] for line in log.read_text().splitlines()}) > 1  # the work was shared
    summaries = " | ".join(lines[-1]["summary"] for _, lines, _ in results)
    assert "being scored by another process" in summaries
    summary = fake.score(store, names)  # a rerun finds everything finished
    assert summary.skipped == tuple(names) and not summary.scored
    m = scenarios._open(store)
    assert sorted(m.models) == names and (m.values == fake.expected(sorted(m.models)).values).all()
