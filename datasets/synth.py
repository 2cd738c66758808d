"""Write a labelled dataset from the camera simulator, in the standard layout.

Deterministic: the same arguments give the same bytes (part ``i`` is rendered from
``(seed, i)`` alone, whichever worker renders it). Frames are rendered and encoded in a
process pool and the dataset appears in one rename when complete.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import multiprocessing as mp
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datasets.layout import IMAGES, MASKS, Dataset, DatasetError, DatasetInfo, Sample
from datasets.simulator import DEFAULT_RECIPE, DEFAULT_SEVERITY, GOOD, SimulationError, Simulator
from datasets.simulator.simulator import check_severity_range
from datasets.split import DEFAULT_FRACTIONS, assign_splits, check_fractions
from inspection.atomic import atomic_dir

SYNTH_VERSION = 1  # bump when rendering changes, so datasets say which simulator made them
# Below this many pixels in all, worker start-up costs more than it saves.
_POOL_MIN_PIXELS = 40_000_000


def plan_labels(n: int, defect_fraction: float, defects: Sequence[str], seed: int) -> list[str]:
    """Exactly round(n * defect_fraction) defective parts, spread evenly over ``defects``, shuffled."""
    n_defect = round(n * defect_fraction)
    labels = [GOOD] * (n - n_defect)
    labels += [defects[i % len(defects)] for i in range(n_defect)]
    order = np.random.default_rng([seed, 0x1AB]).permutation(n)
    return [labels[i] for i in order]


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would only contend
    if sys.platform.startswith("linux"):
        # Frames allocate many multi-megabyte temporaries; glibc would mmap and unmap each one and
        # the page faults cost a third of the render time. Keep them on the heap in this worker.
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
            libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD


def _render_chunk(job: dict[str, Any]) -> list[tuple[int, str, str, str, str, str]]:
    """Render, encode and write parts; returns manifest rows. Runs in a worker process."""
    sim = Simulator(job["recipe"], size=job["size"], color=job["color"])
    root, seed, lo_hi = Path(job["root"]), job["seed"], job["severity"]
    rows = []
    for index, label in job["items"]:
        severity = None
        if label != GOOD:
            severity = float(np.random.default_rng([seed, index, 0x5E]).uniform(*lo_hi))
        part = sim.render(label, severity=severity, seed=(seed, index), jpeg=False)
        stem = f"{job['recipe']}_{seed}_{index:06d}"
        ok, buf = cv2.imencode(".jpg", part.image, [cv2.IMWRITE_JPEG_QUALITY, part.nuisance.jpeg_quality])
        if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
            raise SimulationError(f"could not encode part {index} as JPEG")
        data = buf.tobytes()
        rel = f"{IMAGES}/{label}/{stem}.jpg"
        (root / rel).write_bytes(data)
        mask_rel = ""
        if label != GOOD:
            mask_rel = f"{MASKS}/{label}/{stem}.png"
            ok, mbuf = cv2.imencode(".png", part.mask, [cv2.IMWRITE_PNG_BILEVEL, 1])
            (root / mask_rel).write_bytes(mbuf.tobytes())
        source = f"sim:{job['recipe']} seed={seed} part={index} severity={part.severity:.3f}"
        rows.append((index, rel, label, hashlib.sha256(data).hexdigest(), mask_rel, source))
    return rows


def synthesize(out: Path, *, n: int, recipe: str = DEFAULT_RECIPE, seed: int = 0,
               size: tuple[int, int] = (1024, 1280), defect_fraction: float = 0.5,
               defects: Sequence[str] | None = None, severity: tuple[float, float] = DEFAULT_SEVERITY,
               splits: Sequence[float] = DEFAULT_FRACTIONS, workers: int | None = None, progress: bool = False,
               color: bool = False, overwrite: bool = False) -> Dataset:
    """Render ``n`` parts into the dataset folder ``out`` (h, w = ``size``); see the module docstring.

    Classes are "good" plus ``defects`` (default: every defect type of the recipe), and
    "good" is the pass class. ``severity`` is the range defect severities are drawn from.
    """
    out = Path(out)
    sim = Simulator(recipe, size=size, color=color)  # validates recipe and size
    defects = tuple(defects) if defects else sim.recipe.defects
    for d in defects:
        if d == GOOD:
            raise DatasetError("'good' is not a defect type: list only defects in 'defects'")
        sim.check_label(d)
    if len(set(defects)) != len(defects):
        raise DatasetError(f"defect types are repeated in {defects}")
    if n < 1:
        raise DatasetError(f"n={n}: ask for at least one image")
    if not 0 <= defect_fraction <= 1:
        raise DatasetError(f"defect fraction {defect_fraction} is outside 0..1")
    severity = check_severity_range(severity)
    fractions = check_fractions(splits)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DatasetError(f"{out} already exists and is not empty: choose a new folder or allow overwriting (--force)")

    labels = plan_labels(n, defect_fraction, defects, seed)
    classes = (GOOD, *defects)
    n_workers = max(1, workers or os.cpu_count() or 1)
    if n * sim.size[0] * sim.size[1] < _POOL_MIN_PIXELS and workers is None:
        n_workers = 1
    chunk = max(1, min(50, n // (n_workers * 6) or 1))
    with atomic_dir(out) as tmp:
        for label in classes:
            (tmp / IMAGES / label).mkdir(parents=True, exist_ok=True)
            if label != GOOD:
                (tmp / MASKS / label).mkdir(parents=True, exist_ok=True)
        items = list(enumerate(labels))
        base = {"root": str(tmp), "recipe": recipe, "seed": seed, "size": sim.size, "color": color,
                "severity": severity}
        jobs = [{**base, "items": items[i : i + chunk]} for i in range(0, n, chunk)]
        rows = _run(jobs, n_workers, n, progress)
        rows.sort()
        samples = [Sample(path=r[1], label=r[2], sha256=r[3], mask=r[4], source=r[5]) for r in rows]
        info = DatasetInfo(classes=classes, pass_classes=(GOOD,), extra={"generator": {
            "tool": "defectscope dataset synth", "version": SYNTH_VERSION, "recipe": recipe, "seed": seed,
            "n": n, "size": list(sim.size), "color": color, "defect_fraction": defect_fraction,
            "defects": list(defects), "severity": list(severity), "splits": list(fractions)},
            # preprocessing that suits these frames; training uses it unless told otherwise
            "preprocess": {"color": "rgb" if color else "gray", "fixture": sim.recipe.fixture}})
        Dataset(tmp, info, assign_splits(samples, fractions)).save()
    return Dataset.load(out)


def _run(jobs: list[dict[str, Any]], workers: int, total: int, progress: bool) -> list[tuple]:
    rows: list[tuple] = []
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("rendering", total=total)
    try:
        if workers == 1:
            results = map(_render_chunk, jobs)
            pool = None
        else:
            # never fork: a parent that already ran OpenCV (or torch) threads deadlocks its forked children
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                                       initializer=_worker_init)
            results = pool.map(_render_chunk, jobs)
        try:
            for chunk_rows in results:
                rows.extend(chunk_rows)
                if bar is not None:
                    bar.advance(task, len(chunk_rows))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    finally:
        if bar is not None:
            bar.stop()
    return rows
