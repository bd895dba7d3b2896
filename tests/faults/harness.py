"""Running fault-injection children: start them (together), kill them, read what they said."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import loglik_map as lm

#: The checkout the children import loglik_map from (the same copy as the parent).
REPO = Path(lm.__file__).resolve().parents[1]


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -m tests.faults.child ARGS`` (a fresh interpreter: no fork of this process)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "tests.faults.child", *map(str, args)], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, list[dict], str]:
    """Wait for ``proc``; its exit status, the JSON lines it printed and its stderr."""
    out, err = proc.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, lines, err


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, list[dict], str]:
    return finish(start(*args, env=env), timeout)


def start_together(arg_lists: list[list[str]], go: Path, env: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """Start one child per argument list, let each import everything, then release them at once."""
    procs = [start(*args, "--go", str(go), env=env) for args in arg_lists]
    for p in procs:
        line = p.stdout.readline()  # {"ready": pid}
        if not line.startswith('{"ready"'):
            p.kill()
            raise RuntimeError(f"child failed to start: {line}{p.stderr.read()}")
    go.touch()
    return procs


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def wait_until(condition, timeout: float = 60.0, step: float = 0.01) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(step)
