"""OpenCV capture: a camera by device index, an RTSP/HTTP stream, or a video file.

Live sources (devices and streams) reconnect with exponential backoff when they stop
delivering, count the frames lost, and, when paced, keep grabbing at the camera's own rate
and hand out only the latest frame (so a slow consumer never sees stale frames from a
backlog). Video files play once, frame by frame, and end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from inspection.camera.base import BaseSource, CameraError, log
from inspection.types import Frame

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")


def _describe(target: int | str) -> str:
    return f"camera {target}" if isinstance(target, int) else str(target)


class OpenCVSource(BaseSource):
    def __init__(self, target: int | str | Path, *, rate: float | None = None, color: Literal["bgr", "gray"] = "bgr",
                 reconnect: bool = True, max_reconnects: int | None = 10, backoff: float = 0.5,
                 max_backoff: float = 10.0, api_preference: int = cv2.CAP_ANY,
                 capture_factory: Callable[..., Any] = cv2.VideoCapture,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(rate=rate, clock=clock, sleep=sleep)
        if isinstance(target, Path) or (isinstance(target, str) and "://" not in target):
            path = Path(target)
            if not path.is_file():
                raise CameraError(f"video file {path} does not exist: check the path")
            self.kind, self.target = "file", str(path)
        elif isinstance(target, int):
            self.kind, self.target = "device", target
        else:
            self.kind, self.target = "stream", str(target)
        self.name = _describe(self.target)
        self.live = self.kind != "file"
        self.self_paced = self.live
        self.color = color
        self.reconnect, self.max_reconnects = reconnect and self.live, max_reconnects
        self.backoff, self.max_backoff = backoff, max_backoff
        self._factory, self._api, self._sleep = capture_factory, api_preference, sleep
        self._cap: Any = None
        self._cap = self._open()

    def _open(self) -> Any:
        cap = self._factory(self.target, self._api)
        if not cap.isOpened():
            cap.release()
            hint = {"device": "is it connected and not used by another program?",
                    "stream": "check the URL, credentials and network",
                    "file": "is it a video format OpenCV can read (mp4, avi, mkv)?"}[self.kind]
            raise CameraError(f"cannot open {self.name}: {hint}")
        return cap

    def _reopen(self) -> None:
        """Release and reopen with exponential backoff; CameraError when the retries run out."""
        delay, attempt = self.backoff, 0
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        while not self.closed:
            attempt += 1
            if self.max_reconnects is not None and attempt > self.max_reconnects:
                raise CameraError(f"{self.name} stopped delivering frames and {self.max_reconnects} reconnects failed")
            log.warning("%s stopped delivering frames; reconnecting in %.1f s (attempt %d)", self.name, delay, attempt)
            self._sleep(delay)
            try:
                self._cap = self._open()
            except CameraError:
                delay = min(self.max_backoff, delay * 2)
                continue
            self.stats.reconnects += 1
            return

    def _convert(self, img: np.ndarray) -> np.ndarray:
        if img.dtype != np.uint8:  # some drivers deliver 16-bit: keep the top 8 bits, as the decoder does
            img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else cv2.convertScaleAbs(img)
        if img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        if self.color == "gray" and img.ndim == 3:
            return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        if self.color == "bgr" and (img.ndim == 2 or img.shape[2] == 1):
            return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        return img

    def _frames(self) -> Iterator[Frame]:
        index = 0
        while not self.closed and self._cap is not None:
            if self.live and self.pacer is not None:
                while not self.pacer.due() and not self.closed:  # drain at camera speed, keep the newest
                    if not self._cap.grab():
                        break
                    self.stats.dropped += 1
            ok, img = self._cap.read()
            if not ok or img is None:
                if not self.live:
                    return  # end of the video file
                self.stats.dropped += 1
                if not self.reconnect:
                    raise CameraError(f"{self.name} stopped delivering frames")
                self._reopen()
                continue
            meta: dict[str, Any] = {"index": index, "kind": self.kind}
            if not self.live:
                meta["pos_msec"] = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
            yield Frame(self._convert(img), source=self.name, timestamp=time.time(), meta=meta)
            index += 1

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
