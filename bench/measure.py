"""Process measurements for the benchmarks: memory, machine load, latency percentiles."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """The process's resident set size now, in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1024 / 1024


def load_average() -> float:
    """The machine's 1-minute load average: above the core count, other work competes for the CPU."""
    return round(os.getloadavg()[0], 2)


def matched_and_load(matched: list[int], loads: list[float]) -> dict:
    """The median of how many rows each keyword query matched, and the mean load while they ran."""
    return {
        "rows_matched_p50": int(sorted(matched)[len(matched) // 2]),
        "load": round(sum(loads) / len(loads), 2),
    }


def print_line(line: str, out: Path | None) -> None:
    """Print a JSON line, and append it to `out` when given."""
    print(line, flush=True)
    if out:
        with out.open("a") as lines:
            lines.write(line + "\n")


def latency_stats(samples: list[float]) -> dict:
    """p50, p95 and mean of latencies given in seconds, in milliseconds."""
    ms = np.asarray(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "n": len(samples),
    }


def torch_threads() -> int:
    """The intra-op thread count torch computes with."""
    import torch

    return torch.get_num_threads()
