"""Thread pools for work no station waits for (heatmaps, unpacking zips), at the lowest CPU priority.

On Linux a thread has its own nice value, so these threads yield the cores to decoding and
inference whenever both want them: a client that asks for heatmaps or uploads zips all day
slows the stations' verdicts by a few percent, not by half (benchmarks/misbehaving_client.py).
Elsewhere the priority cannot be set per thread and the pools run at normal priority.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

NICE = 19


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted: run as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def background_pool(workers: int, name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=_lower_priority)
