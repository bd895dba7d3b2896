"""Fault scenarios: each injects one kind of fault once and reports what became of the data.

Used by the fault-injection tests (one or two trials each) and by
``benchmarks/fault_injection.py`` (many trials, tallied into the table in
``benchmarks/RESULTS.md``). A scenario never asserts: it returns an :class:`Outcome`, and the
caller decides. Scenarios that need no kill point inside the library also run against earlier
versions of loglik_map (the benchmark's "before" column).
"""

from __future__ import annotations

import json
import random
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import loglik_map as lm

from . import child, fake, harness


@dataclass
class Outcome:
    """What one injected fault did.

    Attributes
    ----------
    fault : str
    lost : bool
        Data that had been saved (a save or a finished model that reported success) are gone
        or unreadable afterwards.
    silent : bool
        Wrong data were returned, or a call reported success for data that are not on disk,
        without an error.
    unclear : bool
        A failure was reported by an unexplained backend exception (a traceback) rather than a
        :class:`~loglik_map.LoglikMapError` naming the file and what to do.
    crashed : bool
        A process died of something other than the injected kill (e.g. a segfault).
    detail : str
    """

    fault: str
    lost: bool = False
    silent: bool = False
    unclear: bool = False
    crashed: bool = False
    detail: str = ""


def _open(path: Path) -> lm.LogLikelihoodMatrix:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "the previous data were restored"
        return lm.open_matrix(path)


def _holds(path: Path, seeds, **shape) -> bool:
    """True if ``path`` opens and holds exactly ``child.matrix(s, **shape)`` for one of ``seeds``."""
    try:
        back = _open(path)
    except Exception:  # noqa: BLE001 - unreadable counts as not holding it
        return False
    wants = [child.matrix(s, **shape) for s in seeds]
    return any(np.array_equal(back.values, w.values) and list(back.models) == list(w.models) for w in wants)


def _clean(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


# ---------------------------------------------------------------------- saves
def kill_during_save(folder: Path, suffix: str, point: str) -> Outcome:
    """Overwrite matrix 1 with matrix 2 and kill the saver at ``point`` (see ``child.KILL_POINTS``)."""
    path = folder / f"ll{suffix}"
    child.matrix(1).save(path)
    rc, _, err = harness.run("save", path, "--seed", 2, "--overwrite", "--kill-at", point)
    out = Outcome(f"kill -9 in a {suffix} save: {point}", crashed=rc != -signal.SIGKILL, detail=err[-300:])
    out.lost = not _holds(path, (1, 2))
    return out


def random_kill_during_saves(folder: Path, suffix: str, rng: random.Random) -> Outcome:
    """A process overwrites ``path`` again and again; kill it at a random moment."""
    path = folder / f"ll{suffix}"
    child.matrix(0).save(path)
    proc = harness.start("save-loop", path, "--seed", 1)
    first = proc.stdout.readline()
    if '"saved"' not in first:
        proc.kill()
        return Outcome(f"kill -9 at a random moment of {suffix} saves", crashed=True, detail=first + proc.stderr.read())
    time.sleep(rng.uniform(0.0, 0.3))
    harness.kill(proc)
    _, lines, _ = harness.finish(proc)
    last = max([json.loads(first)["saved"]] + [d["saved"] for d in lines if "saved" in d])
    out = Outcome(f"kill -9 at a random moment of {suffix} saves")
    out.lost = not _holds(path, (last, last + 1))  # the last reported save, or the one running
    return out


def concurrent_savers(folder: Path, suffix: str, overwrite: bool, n: int = 2) -> Outcome:
    """``n`` processes save different matrices to one path at the same instant."""
    path = folder / f"ll{suffix}"
    if overwrite:
        child.matrix(0).save(path)
    flag = ["--overwrite"] if overwrite else []
    seeds = list(range(1, n + 1))
    procs = harness.start_together([["save", path, "--seed", s, *flag] for s in seeds], folder / "go")
    results = [harness.finish(p) for p in procs]
    fault = f"{n} concurrent {suffix} saves, overwrite={overwrite}"
    out = Outcome(fault, crashed=any(rc != 0 for rc, _, _ in results),
                  detail=" | ".join(err[-200:] for rc, _, err in results if rc))
    if out.crashed:
        return out
    out.unclear = any(lines[-1].get("raw") for _, lines, _ in results)
    winners = [s for s, (_, lines, _) in zip(seeds, results) if lines[-1]["ok"]]
    if overwrite:
        # each winner had its data on disk when it returned; the path holds one of them
        out.silent = not winners or not _holds(path, winners)
    else:
        out.silent = len(winners) != 1 or not _holds(path, winners)  # overwrite=False bypassed, or data missing
    out.lost = not _holds(path, winners or [0])
    out.detail = f"winners {winners}"
    return out


def full_disk_save(folder: Path, suffix: str, limit: int = 100_000) -> Outcome:
    """Overwrite a saved matrix when the disk fills up (RLIMIT_FSIZE) in the middle of the write."""
    path = folder / f"ll{suffix}"
    child.matrix(1).save(path)
    rc, lines, err = harness.run("save-limited", path, "--seed", 2, "--overwrite", "--limit", limit)
    out = Outcome(f"disk full during a {suffix} save", crashed=rc != 0, detail=err[-300:])
    saved = not out.crashed and bool(lines[-1]["ok"])
    if not out.crashed:
        out.unclear = bool(lines[-1].get("raw"))
    if saved:  # it fitted after all: then the new data must be there
        out.silent = not _holds(path, (2,), **child.BIG)
    out.lost = not (_holds(path, (2,), **child.BIG) if saved else _holds(path, (1,)))
    return out


def damage(folder: Path, suffix: str, trials: int, seed: int) -> tuple[Outcome, dict]:
    """Open ``trials`` copies of a saved matrix with a flipped bit or a truncated file."""
    path = folder / f"ll{suffix}"
    child.matrix(seed).save(path)
    rc, lines, err = harness.run("damage", path, "--seed", seed, "--trials", trials)
    out = Outcome(f"damaged {suffix} files", crashed=rc != 0, detail=err[-300:])
    counts = lines[-1] if lines else {}
    out.silent = any(c["silent"] for c in counts.values())
    out.unclear = any(c.get("refused unclearly") for c in counts.values())
    return out, counts


# ---------------------------------------------------------------------- scoring
def kill_during_scoring(folder: Path, point: str) -> Outcome:
    """Score three models, kill the run (at a random moment while scoring, or at ``point``), resume."""
    store = folder / "s"
    names = ["a", "b", "c"]
    if point == "while scoring":
        proc = harness.start("score", store, "--models", *names, env={"FAKE_SCORE_SECONDS": "0.3"})
        finished = store / "models"
        harness.wait_until(lambda: finished.is_dir() and any(p.suffix == ".zarr" for p in finished.iterdir()))
        harness.kill(proc)
        rc = -signal.SIGKILL
    else:
        rc, _, _ = harness.run("score", store, "--models", *names, "--kill-at", point)
    out = Outcome(f"kill -9 during scoring: {point}", crashed=rc != -signal.SIGKILL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = fake.score(store, names)
            m = lm.open_matrix(store)
    except Exception as err:  # noqa: BLE001 - the store could not be resumed
        out.lost, out.detail = True, f"{type(err).__name__}: {err}"
        return out
    want = fake.expected(names)
    out.lost = not summary.ok or list(m.models) != names or not np.array_equal(m.values, want.values)
    return out


def concurrent_scorers(folder: Path, n: int = 3) -> Outcome:
    """``n`` score_models runs start on one new store at the same instant (one shared model each)."""
    store = folder / "s"
    runs = [["score", store, "--models", "shared", f"own{i}"] for i in range(n)]
    procs = harness.start_together(runs, folder / "go")
    results = [harness.finish(p) for p in procs]
    names = ["shared"] + [f"own{i}" for i in range(n)]
    out = Outcome(f"{n} concurrent scoring runs on a new store", crashed=any(rc != 0 for rc, _, _ in results))
    failed = [lines[-1].get("error", "") for _, lines, _ in results if lines and not lines[-1]["ok"]]
    out.unclear = any(lines and lines[-1].get("raw") for _, lines, _ in results)
    try:
        m = _open(store)
        models = sorted(m.models)
        correct = np.array_equal(m.values, fake.expected(list(m.models)).values)
    except Exception as err:  # noqa: BLE001
        models, correct = [], False
        failed.append(f"{type(err).__name__}: {err}")
    out.lost = models != sorted(names) or not correct
    out.silent = out.lost and not failed  # every run said it succeeded, yet rows are missing
    out.detail = "; ".join(failed)[:300]
    return out
