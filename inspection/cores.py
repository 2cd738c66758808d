"""The cores this process may use: its CPU affinity, or a container's CPU quota where that is fewer
(a container limited to 2 CPUs on a 16-core host must not start 16 threads of each kind)."""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def usable_cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def cgroup_quota(v2: Path = _CGROUP_V2, v1: tuple[Path, Path] = _CGROUP_V1) -> float | None:
    """CPUs the container's quota allows (a fraction allowed), or None when there is no quota."""
    try:
        if v2.exists():
            q, period = v2.read_text().split()[:2]
            return None if q == "max" else int(q) / int(period)
        q, period = (int(p.read_text()) for p in v1)
        return None if q <= 0 else q / period
    except (OSError, ValueError):
        return None
