"""Helpers for tests: encode synthetic images, build a tiny real model bundle."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from inspection.bundle import Bundle
from inspection.card import ModelCard, Thresholds
from inspection.models import create_model
from inspection.preprocess import PreprocessConfig
from training.export import save_bundle


def encode(image: np.ndarray, ext: str = ".png", params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, image, params or [])
    if not ok:
        raise RuntimeError(f"cannot encode {ext}")
    return buf.tobytes()


def make_tiny_bundle(path: Path, *, color: str = "rgb", arch: str = "mobilenet_v3_small") -> Bundle:
    """Random-init classifier good/scratch/dent at 40x56: real bundle files, fast to run."""
    channels = 1 if color == "gray" else 3
    card = ModelCard(
        name="tiny", version="", arch=arch, classes=("good", "scratch", "dent"), pass_classes=("good",),
        preprocess=PreprocessConfig(input_size=(40, 56), color=color, mean=(0.5,) * channels, std=(0.25,) * channels),
        thresholds=Thresholds(fail=0.5, review=0.3),
    )
    import torch

    torch.manual_seed(0)
    model = create_model(arch, num_classes=3, in_channels=channels)
    return save_bundle(path, model, card)

def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header declares width x height: a few dozen bytes that would decode to gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def run_in_threads(work: Callable[[int], None], n: int) -> list[BaseException]:
    """Run ``work(0..n-1)`` in n threads at once; the exceptions they raised (empty when none did)."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
