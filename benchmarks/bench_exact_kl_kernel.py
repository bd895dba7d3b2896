"""Cost of exact_kl's per-chunk KL kernel (``pair_chunk``), now against an earlier revision's.

Run by hand (not a test), from the repository root in the project's virtual environment:

    python benchmarks/bench_exact_kl_kernel.py [--before REV] [--rows 128] [--vocab 8192 50304]
                                               [--repeat 7] [--calls 5]

Times ``pair_chunk`` (both KL directions, log-probabilities of the targets, top-token agreement)
on float32 logit chunks of ``rows`` positions (the chunk ``exact_kl`` forms on the CPU) whose
second head is the first shifted by 30 nats plus noise, the model body left out: this is the
part of exact_kl that the kernel's arithmetic changes. With ``--before REV`` the kernel of git
revision ``REV`` is timed too, the two interleaved round after round (so that the load of a shared
machine weighs on both alike); each time is the best of ``--repeat`` rounds of ``--calls`` calls.
Also prints each kernel's largest |KL| for identical distributions shifted by 30 nats.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import inspect
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def load_kernel(rev: str | None):
    """``pair_chunk`` of the working tree, or of git revision ``rev``."""
    if rev is None:
        from loglik_map.scoring._exact_kl_run import pair_chunk

        return pair_chunk
    source = subprocess.run(["git", "show", f"{rev}:loglik_map/scoring/_exact_kl_run.py"], cwd=HERE.parent,
                            check=True, capture_output=True, text=True).stdout
    import loglik_map.scoring  # noqa: F401  (the package its relative imports resolve in)

    path = Path(tempfile.mkdtemp()) / "_exact_kl_run_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("loglik_map.scoring._exact_kl_run_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    kernel = module.pair_chunk
    if next(iter(inspect.signature(kernel).parameters)) == "torch":  # revisions before the torch accessor
        import torch

        return functools.partial(kernel, torch)
    return kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="git revision whose kernel to time beside this one")
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--vocab", type=int, nargs="+", default=[8192, 50304])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()

    import torch

    kernels = {"this tree": load_kernel(None)}
    if args.before:
        kernels[f"revision {args.before}"] = load_kernel(args.before)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 chunks of {args.rows} positions")
    print("\n| vocabulary | kernel | ms per chunk (best) | × first | max abs KL, identical shifted by 30 nats |")
    print("|---|---|---|---|---|")
    for vocab in args.vocab:
        g = torch.Generator().manual_seed(0)
        za = torch.randn(args.rows, vocab, generator=g) * 3
        zb = za - 30 + 0.05 * torch.randn(args.rows, vocab, generator=g)
        targets = torch.randint(0, vocab, (args.rows,), generator=g)
        work = torch.empty((4, args.rows, vocab))
        best = {name: float("inf") for name in kernels}
        for _ in range(args.repeat):
            for name, kernel in kernels.items():
                a, b = za.clone(), zb.clone()
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    kernel(a, b, targets, work)
                best[name] = min(best[name], (time.perf_counter() - t0) / args.calls)
        first = next(iter(best.values()))
        for name, kernel in kernels.items():
            kl_ab, kl_ba, *_ = kernel(za.clone(), za - 30, targets, work)
            err = max(float(kl_ab.abs().max()), float(kl_ba.abs().max()))
            print(f"| {vocab} | {name} | {1000 * best[name]:.2f} | {best[name] / first:.2f}× | {err:.1e} |")


if __name__ == "__main__":
    main()
