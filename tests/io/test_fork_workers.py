"""Forked workers can read and write stores after their parent has read one (issue 27, item 7).

Every scenario runs in a fresh interpreter (``subprocess``) that forks its own workers, so the
test process (which may have started torch or dask threads) is never forked; a timeout turns a
hang into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ..faults.harness import REPO

_SCENARIO = textwrap.dedent("""
    import multiprocessing, sys
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    import loglik_map as lm
    from loglik_map.io._backends import read_dataset
    from tests.faults import fake

    def read_back(path):
        return float(read_dataset(Path(path), "zarr", ours=True)["log_likelihood"].sum())

    if __name__ == "__main__":
        fake.install()
        tmp = Path(sys.argv[1])
        texts = lm.TextSet(fake.TEXTS)
        lm.score_models(["a", "b"], texts, tmp / "store", progress=False)
        lm.open_matrix(tmp / "store")          # the parent reads the store (eagerly) ...
        fake.expected(["a"]).save(tmp / "m.zarr")
        lm.open_matrix(tmp / "m.zarr")         # ... and a saved matrix
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(2, mp_context=fork) as pool:  # ... then forks workers that resume it
            summary = lm.score_models(["a", "b", "c", "d"], texts, tmp / "store", executor=pool, progress=False)
            sums = list(pool.map(read_back, [str(tmp / "m.zarr")] * 2))
        assert summary.ok, summary
        assert list(lm.open_matrix(tmp / "store").models) == ["a", "b", "c", "d"]
        assert sums[0] == sums[1]
        print("done")
""")


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_forked_workers_resume_a_store_the_parent_has_read(tmp_path):
    script = tmp_path / "scenario.py"
    script.write_text(_SCENARIO)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        out = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=90)
    except subprocess.TimeoutExpired as err:
        raise AssertionError("forked workers hung reading or writing a store the parent had read") from err
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-3000:]
