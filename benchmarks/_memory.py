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
