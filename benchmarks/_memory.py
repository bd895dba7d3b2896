"""Peak-memory helpers shared by the benchmarks (Linux /proc)."""

from __future__ import annotations


def rss_kib(field: str) -> int:
    """A field of /proc/self/status in KiB: ``"VmRSS"`` (now) or ``"VmHWM"`` (peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def reset_peak() -> None:
    """Reset VmHWM to the current resident size (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def timed_runs(run, repeat: int, device: str) -> dict:
    """Call ``run()`` ``repeat`` times: its last result, the best and every time (s), and the peak
    memory above the level before the first call (MiB; device memory on a GPU, else resident)."""
    import time

    import torch

    base = rss_kib("VmRSS")
    reset_peak()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        gpu_base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        values = run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    out = dict(values=values, seconds=min(times), all_seconds=times, peak_extra_mib=(rss_kib("VmHWM") - base) / 1024)
    if device.startswith("cuda"):  # on a GPU, device memory is what counts
        out["peak_extra_mib"] = (torch.cuda.max_memory_allocated() - gpu_base) / 2**20
    return out
