"""Actions run in a separate process by the fault-injection tests and benchmark.

Run from the repository root: ``python -m tests.faults.child ACTION [ARGS...]``. Each action
prints one JSON line on stdout saying what it did; ``--kill-at POINT`` makes the process kill
itself with SIGKILL at a chosen point of the storage code (the points are listed in
:data:`KILL_POINTS`), which is how a crash at an exact moment is injected.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import loglik_map as lm

from . import fake

#: Where --kill-at can stop a process: the moments a crash could do most harm.
KILL_POINTS = {
    "save-mid-write": "a save, after its temporary was written, before it was flushed and checked",
    "save-before-commit": "a save, after its temporary was checked, before anything was renamed",
    "save-after-aside": "a Zarr overwrite, after the old store was renamed aside, before the new one was renamed in",
    "save-before-aside-delete": "a Zarr overwrite, after the new store was renamed in, before the old one was deleted",
    "row-mid-write": "scoring, while a model's rows were written to their temporary",
    "row-before-rename": "scoring, after a model's rows were written and checked, before they were renamed in",
    "init-before-manifest": "a new store's set-up, after texts.zarr, before the manifest was written",
}


#: The shape of the matrix ``save-limited`` writes (large enough to fill small file-size limits).
BIG = {"K": 50, "N": 4000}


def matrix(seed: int, K: int = 4, N: int = 300) -> lm.LogLikelihoodMatrix:
    """The matrix saver ``seed`` writes (recognisable by its model names ``s<seed>m<i>``)."""
    rng = np.random.default_rng(seed)
    n_bytes = np.random.default_rng(0).integers(257, 1025, size=N)
    values = -0.6 * n_bytes + rng.normal(scale=5.0, size=(K, N))
    return lm.LogLikelihoodMatrix(values, models=[f"s{seed}m{i}" for i in range(K)],
                                  texts=[f"t{k}" for k in range(N)], n_bytes=n_bytes,
                                  attrs={"created": "fixed", "saver": seed})


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_when(module, name: str, condition=lambda *a, **k: True, after: bool = False) -> None:
    """Replace ``module.name`` so the process dies (before or after the real call) when ``condition`` holds."""
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        hit = condition(*args, **kwargs)
        if hit and not after:
            _die()
        out = real(*args, **kwargs)
        if hit:
            _die()
        return out

    setattr(module, name, wrapper)


def install_kill_point(point: str | None) -> None:
    if point is None:
        return
    if point not in KILL_POINTS:
        raise SystemExit(f"unknown kill point {point!r}; one of {sorted(KILL_POINTS)}")
    from loglik_map.io import _files as lm_io
    from loglik_map.io import _storage
    from loglik_map.io._runstore import writing as lm_store

    is_aside = lambda path, *a, **k: Path(path).name.endswith(".old")  # noqa: E731
    if point == "save-mid-write":
        _kill_when(os, "fsync")  # the first flush of the temporary
    elif point == "save-before-commit":
        _kill_when(lm_io, "_commit")
    elif point == "save-after-aside":
        _kill_when(os, "rename", lambda src, dst, *a, **k: Path(dst).name.endswith(".old"), after=True)
    elif point == "save-before-aside-delete":
        _kill_when(_storage, "remove_path", is_aside)
    elif point == "row-mid-write":
        _kill_when(_storage, "fsync_tree", lambda path, *a, **k: Path(path).name.endswith(".partial"))
    elif point == "row-before-rename":
        _kill_when(os, "rename", lambda src, dst, *a, **k: Path(dst).parent.name == "models")
    elif point == "init-before-manifest":
        _kill_when(lm_store, "write_json_atomic")


def _wait_for(go: str | None) -> None:
    """Start together with the other processes of a test: wait until the file ``go`` exists."""
    if go is None:
        return
    print(json.dumps({"ready": os.getpid()}), flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)


def _outcome(fn) -> dict:
    """``ok``, or the error; ``raw``: it was not a LoglikMapError (an unexplained backend error)."""
    try:
        fn()
        return {"ok": True}
    except lm.LoglikMapError as err:
        return {"ok": False, "error": str(err), "raw": False}
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}", "raw": True}


def _files(root: Path) -> list[Path]:
    return [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())


def damage_trials(original: Path, trials: int, seed: int) -> dict:
    """Open ``trials`` damaged copies of the saved matrix ``original`` (which holds ``matrix(seed)``):
    half with one flipped bit, half with a file truncated, at random places. Counts how each open
    ended: ``identical`` (the damage hit unused bytes), ``refused`` (a LoglikMapError) or
    ``silent`` (a different matrix returned without a word: must never happen)."""
    import random
    import shutil
    import warnings

    rng = random.Random(seed)
    want = matrix(seed)
    counts = {"flip": {"identical": 0, "refused": 0, "silent": 0},
              "truncate": {"identical": 0, "refused": 0, "silent": 0}}
    copy = original.with_name("damaged" + original.suffix)
    def remove(p: Path) -> None:
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)

    for trial in range(trials):
        kind = "flip" if trial % 2 == 0 else "truncate"
        remove(copy)
        (shutil.copytree if original.is_dir() else shutil.copyfile)(original, copy)
        target = rng.choice(_files(copy))
        raw = bytearray(target.read_bytes())
        if kind == "flip":
            pos = rng.randrange(len(raw))
            raw[pos] ^= 1 << rng.randrange(8)
        else:
            raw = raw[: rng.randrange(len(raw))]
        target.write_bytes(bytes(raw))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                back = lm.open_matrix(copy)
            counts[kind]["identical" if back.identical(want) else "silent"] += 1
        except lm.LoglikMapError:
            counts[kind]["refused"] += 1
        except Exception:
            counts[kind]["refused unclearly"] = counts[kind].get("refused unclearly", 0) + 1
    remove(copy)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.child")
    parser.add_argument("action", choices=["save", "save-loop", "score", "save-limited", "damage"])
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--kill-at", choices=sorted(KILL_POINTS))
    parser.add_argument("--go", help="wait for this file to exist before starting")
    parser.add_argument("--models", nargs="*", default=[])
    parser.add_argument("--limit", type=int, help="save-limited: largest file this process may write (bytes)")
    parser.add_argument("--trials", type=int, default=20, help="damage: how many damaged copies to open")
    args = parser.parse_args(argv)
    install_kill_point(args.kill_at)
    fake.install()
    _wait_for(args.go)
    if args.action == "save":
        out = _outcome(lambda: matrix(args.seed).save(args.path, overwrite=args.overwrite))
    elif args.action == "save-loop":  # overwrite again and again, saying which seed is on disk
        seed = args.seed
        while True:
            matrix(seed).save(args.path, overwrite=True)
            print(json.dumps({"saved": seed}), flush=True)
            seed += 1
    elif args.action == "score":
        out = {}

        def run():
            out["summary"] = str(fake.score(args.path, args.models))

        out.update(_outcome(run))
    elif args.action == "damage":
        out = damage_trials(Path(args.path), args.trials, args.seed)
    else:  # save-limited: a disk that fills up, as far as this process can tell
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.limit, resource.RLIM_INFINITY))
        out = _outcome(lambda: matrix(args.seed, **BIG).save(args.path, overwrite=args.overwrite))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
