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


def session_threads(predictor) -> int:
    """The intra-op threads of an ONNX Runtime predictor's session."""
    return predictor.backend._session.get_session_options().intra_op_num_threads


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


def crack_frame(size: tuple[int, int] = (300, 420), at: tuple[int, int] = (260, 170), seed: int = 0) -> np.ndarray:
    """A grey textured frame with a thin bright crack near ``at`` (x, y): a small defect in a large frame."""
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(120, 12, size), 0, 255).astype(np.uint8)
    cv2.line(img, (at[0] - 20, at[1] - 6), (at[0] + 20, at[1] + 6), 230, 2)
    return img


def make_map_bundle(path: Path, frame: np.ndarray, *, scale: float = 0.5, onnx: bool = True) -> Bundle:
    """A random-init native-resolution segdec bundle (good / crack / pit, gray) whose fail threshold is
    the map's maximum on ``frame`` (PNG-encoded through the real predictor): that frame fails with one
    region, at its hottest map cell, so tests can check where regions land without training."""
    import torch

    from inspection.predictor import Predictor

    card = ModelCard(
        name="map", version="", arch="segdec", classes=("good", "crack", "pit"), pass_classes=("good",),
        preprocess=PreprocessConfig(input_size=(64, 64), color="gray", mean=(0.5,), std=(0.25,), scale=scale),
    )
    torch.manual_seed(0)
    model = create_model("segdec", num_classes=3, in_channels=1, map_channels=2, defect=[False, True, True]).eval()
    draft = save_bundle(path, model, card, export=False)
    item = Predictor(draft, threads=1).inspect(encode(frame))
    from inspection.regions import valid_cells

    rows, cols = valid_cells(item.geometry)
    top = float(item.map[:, :rows, :cols].max())
    return save_bundle(path, model, card.with_(thresholds=Thresholds(fail=top - 1e-6)), export=onnx)
