"""Inject faults into saves and scoring runs many times and tally what became of the data (issue #10).

Run from the repository root (the scenarios live in ``tests/faults``)::

    python benchmarks/fault_injection.py --json faults-now.json
    python benchmarks/fault_injection.py --table faults-now.json [faults-before.json]

The first command runs every scenario of ``tests/faults/scenarios.py`` the given number of
times (each in fresh processes) and writes the counts; the second prints the Markdown table of
``benchmarks/RESULTS.md``. Run against an earlier checkout (its own ``loglik_map`` with this
``tests/faults`` copied in) with ``--portable`` to fill the "before" columns: that skips the
kill points inside the library, which earlier versions do not have.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

KILL_POINTS_SAVE = [(".nc", "save-mid-write"), (".nc", "save-before-commit"), (".zarr", "save-mid-write"),
                    (".zarr", "save-before-commit"), (".zarr", "save-after-aside"),
                    (".zarr", "save-before-aside-delete")]
KILL_POINTS_SCORE = ["init-before-manifest", "row-mid-write", "row-before-rename"]


def run_all(trials: int, portable: bool, damage_trials: int) -> dict[str, dict[str, int]]:
    from tests.faults import fake, scenarios

    fake.install()
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rng = random.Random(10)

    def record(out, group: str | None = None) -> None:
        row = tally[group or out.fault]
        row["injected"] += 1
        for key in ("lost", "silent", "unclear", "crashed"):
            row[key] += int(getattr(out, key))
        if out.detail and (out.lost or out.silent or out.crashed or out.unclear):
            print(f"  {out.fault}: {out.detail[:200]}", file=sys.stderr)

    def fresh():
        return Path(tempfile.mkdtemp(prefix="lm-fault-"))

    start = time.monotonic()
    if not portable:
        for suffix, point in KILL_POINTS_SAVE:
            for _ in range(trials):
                record(scenarios.kill_during_save(fresh(), suffix, point), group=f"kill -9 in a {suffix} save "
                       "at a chosen point")
        for point in KILL_POINTS_SCORE:
            for _ in range(trials):
                record(scenarios.kill_during_scoring(fresh(), point), group="kill -9 while scoring, at a chosen point")
    for suffix in (".nc", ".zarr"):
        for _ in range(3 * trials):
            record(scenarios.random_kill_during_saves(fresh(), suffix, rng))
    for _ in range(2 * trials):
        record(scenarios.kill_during_scoring(fresh(), "while scoring"), group="kill -9 while scoring, at a random moment")
    for suffix in (".nc", ".zarr"):
        for overwrite in (False, True):
            for _ in range(trials):
                record(scenarios.concurrent_savers(fresh(), suffix, overwrite, n=3))
    for _ in range(trials):
        record(scenarios.concurrent_scorers(fresh(), n=4))
    for suffix in (".nc", ".zarr"):
        for limit in (20_000, 100_000, 300_000):
            record(scenarios.full_disk_save(fresh(), suffix, limit), group=f"disk full during a {suffix} save")
    for suffix in (".nc", ".zarr"):
        out, counts = scenarios.damage(fresh(), suffix, damage_trials, seed=7)
        for kind, c in counts.items():
            row = tally[f"{'flipped bit' if kind == 'flip' else 'truncated file'} in a saved {suffix}"]
            row["injected"] += sum(c.values())
            row["silent"] += c["silent"]
            row["unclear"] += c.get("refused unclearly", 0)
            row["crashed"] += int(out.crashed)
            row["refused"] += c["refused"]
    print(f"done in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return {k: dict(v) for k, v in tally.items()}


def table(now: dict, before: dict | None) -> str:
    head = "| fault | injected | data lost | wrong data or false success, silently | unclear error or crash |"
    sep = "|---|---|---|---|---|"
    if before is not None:
        head += " before: lost | before: silent | before: unclear/crash |"
        sep += "---|---|---|"
    lines = [head, sep]
    totals = defaultdict(int)
    for fault, row in now.items():
        cells = [fault, row["injected"], row.get("lost", 0), row.get("silent", 0),
                 row.get("unclear", 0) + row.get("crashed", 0)]
        for key in ("injected", "lost", "silent"):
            totals[key] += row.get(key, 0)
        totals["bad"] += cells[4]
        if before is not None:
            b = before.get(fault)
            cells += (["n/a"] * 3 if b is None else
                      [f"{b.get('lost', 0)} of {b['injected']}", f"{b.get('silent', 0)} of {b['injected']}",
                       f"{b.get('unclear', 0) + b.get('crashed', 0)} of {b['injected']}"])
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    total = f"| **all** | **{totals['injected']}** | **{totals['lost']}** | **{totals['silent']}** | **{totals['bad']}** |"
    if before is not None:
        total += " | | |"
    lines.append(total)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="run the scenarios and write the tally here")
    parser.add_argument("--trials", type=int, default=3, help="trials per scenario and kill point (default 3)")
    parser.add_argument("--damage-trials", type=int, default=200, help="damaged copies opened per format")
    parser.add_argument("--portable", action="store_true", help="only scenarios that run against earlier versions")
    parser.add_argument("--table", nargs="+", metavar="JSON", help="print the table (now [before])")
    args = parser.parse_args()
    if args.json:
        tally = run_all(args.trials, args.portable, args.damage_trials)
        Path(args.json).write_text(json.dumps(tally, indent=1), encoding="utf-8")
        print(table(tally, None))
    if args.table:
        now = json.loads(Path(args.table[0]).read_text(encoding="utf-8"))
        before = json.loads(Path(args.table[1]).read_text(encoding="utf-8")) if len(args.table) > 1 else None
        print(table(now, before))


if __name__ == "__main__":
    main()
