"""How many threads decode and how many infer, chosen for this machine and this model.

Decoding (OpenCV's JPEG decoder, the quality gate, the resize) and inference (ONNX Runtime) both
release the GIL and both burn CPU for every image, in the ratio of their costs. So the cores are
split in that ratio: inference gets ``cores * infer / (decode + infer)`` intra-op threads (at least
one), and decoding a thread per core, since a decode thread waiting for work costs nothing while the
line's bursts find every core ready (the batch runner adds one for the time a worker spends reading
a file). A fixed "every core infers" starved decoding on a cheap model: on 2 cores the service with
the default network answered 170 parts/s with 1 inference thread and 113 with 2; a heavy one wants
them all (the batch runner on resnet18: 49 images/s with 2, 29 with 1). BENCHMARKS.md "Thread layout".

Both costs are measured here, on this machine, in tens of milliseconds, as CPU time of the calling
thread: inference with a one-thread ONNX Runtime session (whose work runs on the caller) on a zero
batch of the model's input (a CNN's cost does not depend on the pixels); decoding on the job's first
files (the batch runner) or, for the service, on a frame of the camera's size. Backends with thread
pools of their own (PyTorch, OpenVINO) keep their defaults: their CPU cannot be measured this way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from inspection.bundle import Bundle
from inspection.cores import usable_cores
from inspection.predictor import Predictor
from inspection.runtime import resolve_backend

PLANNED_BACKENDS = ("onnx", "onnx-int8")


@dataclass(frozen=True)
class ThreadLayout:
    cores: int
    decode: int
    infer: int
    decode_ms: float  # CPU per image, measured
    infer_ms: float

    def describe(self) -> str:
        return (f"{self.decode} decode and {self.infer} inference threads for {self.cores} cores "
                f"(measured CPU per image: decode {self.decode_ms:.1f} ms, inference {self.infer_ms:.1f} ms)")


def decode_threads(cores: int | None = None, *, reads_files: bool = False) -> int:
    """A thread per core, and one more where workers also wait for file reads."""
    return (cores or usable_cores()) + (1 if reads_files else 0)


def plan(cores: int, decode_s: float, infer_s: float, *, reads_files: bool = False) -> ThreadLayout:
    """The split for ``cores`` given the CPU seconds each stage burns per image."""
    total = max(decode_s + infer_s, 1e-9)
    # inference is the serial stage (one batch at a time): a thread too few caps the line's rate, one
    # too many only spins, so its share is rounded up (resnet18 INT8, share 0.68 of 2 cores: 2 threads
    # answered 100 parts/s at 16 stations and 1 thread 80)
    infer = min(cores, max(1, math.ceil(cores * infer_s / total - 1e-9)))
    return ThreadLayout(cores, decode_threads(cores, reads_files=reads_files), infer, 1000 * decode_s,
                        1000 * infer_s)


def cpu_per_call(fn: Callable[[], object], repeat: int = 3) -> float:
    """The least CPU seconds of the calling thread over ``repeat`` calls after one warm-up: thread
    time, so other threads' work on a busy machine does not count."""
    fn()
    best = math.inf
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return best


def infer_cost(predictor: Predictor, batch: int = 8) -> float:
    """CPU seconds per image of ``predictor``'s inference (a one-thread session), ``batch`` at a call."""
    pre = predictor.card.preprocess
    x = np.zeros((batch, pre.channels, *pre.input_size), np.float32)
    return cpu_per_call(lambda: predictor.infer(x)) / batch


def frame_cost(predictor: Predictor, size: tuple[int, int]) -> float:
    """CPU seconds to load (decode, gate, preprocess) a JPEG of ``size`` (h, w): a smooth frame with a
    camera's sensor noise, which JPEG codes at about the density of a real one."""
    h, w = size
    rng = np.random.default_rng(0)
    ramp = np.linspace(60, 190, w, dtype=np.float32)[None, :] + np.linspace(0, 30, h, dtype=np.float32)[:, None]
    frame = np.clip(ramp[..., None] + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    return cpu_per_call(lambda: predictor.load(data))


def planned_predictor(bundle: Bundle, decode_cost: Callable[[Predictor], float], *, backend: str = "auto",
                      reads_files: bool = False, cores: int | None = None,
                      **kwargs) -> tuple[Predictor, ThreadLayout | None]:
    """A Predictor whose inference threads follow the plan for this machine, and the plan (None for a
    backend the plan does not measure, which then gets its default threads). ``decode_cost`` measures
    the decode side with the one-thread predictor."""
    name = resolve_backend(bundle, backend)
    if name not in PLANNED_BACKENDS:
        return Predictor(bundle, backend=name, **kwargs), None
    predictor = Predictor(bundle, backend=name, threads=1, **kwargs)
    layout = plan(cores or usable_cores(), decode_cost(predictor), infer_cost(predictor), reads_files=reads_files)
    if layout.infer > 1:
        predictor = Predictor(bundle, backend=name, threads=layout.infer, **kwargs)
    return predictor, layout
