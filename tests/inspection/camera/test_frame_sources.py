"""Frame sources: the simulator, image folders, video files, live-stream reconnects and pacing."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.simulator.camera import SimulatedCamera
from datasets.simulator.sources import open_source
from inspection.camera import (
    CameraError,
    FolderSource,
    FrameSource,
    OpenCVSource,
    Pacer,
    RateError,
    parse_rate,
)
from inspection.types import Frame

SIZE = (70, 90)


def test_sim_source_yields_frames_with_ground_truth_and_closes() -> None:
    with open_source("sim:steel", seed=2, n=4, size=SIZE, defect_rate=1.0) as src:
        assert isinstance(src, FrameSource) and isinstance(src, SimulatedCamera)
        frames = list(src)
    assert len(frames) == 4 and all(isinstance(f, Frame) for f in frames)
    assert [f.meta["part_index"] for f in frames] == [0, 1, 2, 3]
    assert all(f.meta["label"] != "good" and f.meta["bbox"] is not None for f in frames)
    assert "mask" not in frames[0].meta and frames[0].image.shape == SIZE
    assert src.closed and src.stats.frames == 4
    with pytest.raises(CameraError, match="closed"):
        list(src)


def test_sim_source_mask_on_request_and_colour() -> None:
    with open_source("sim", n=1, size=SIZE, with_mask=True, color="bgr", defect_rate=1.0) as src:
        (frame,) = list(src)
    assert frame.image.shape == (*SIZE, 3) and frame.meta["mask"].shape == SIZE and frame.meta["mask"].any()


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _, buf = cv2.imencode(path.suffix, img)
    path.write_bytes(buf.tobytes())


def test_folder_source_is_recursive_sorted_and_skips_non_images(tmp_path: Path, caplog) -> None:
    img = np.full((11, 17), 128, np.uint8)
    _write(tmp_path / "b.png", img)
    _write(tmp_path / "a" / "z.jpg", img)
    _write(tmp_path / "c.bmp", img)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (tmp_path / ".hidden.png").write_bytes(b"ignored silently")
    with caplog.at_level(logging.WARNING, logger="inspection.camera"), open_source(str(tmp_path)) as src:
        assert isinstance(src, FolderSource)
        frames = list(src)
    names = [Path(f.source).relative_to(tmp_path).as_posix() for f in frames]
    assert names == ["a/z.jpg", "b.png", "c.bmp"]
    assert all(f.image.shape == (11, 17, 3) and f.size == (11, 17) for f in frames)
    warned = caplog.text
    assert "notes.txt" in warned and "broken.jpg" in warned and ".hidden" not in warned
    assert src.stats.skipped == 2


def test_video_file_is_read_back_frame_by_frame(tmp_path: Path) -> None:
    path = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 32))
    assert writer.isOpened()
    for k in range(7):
        img = np.zeros((32, 48, 3), np.uint8)
        img[:, : 6 * (k + 1)] = 200  # a bar that grows one step per frame
        writer.write(img)
    writer.release()
    with open_source(str(path)) as src:
        assert isinstance(src, OpenCVSource) and src.kind == "file"
        frames = list(src)
    assert len(frames) == 7
    widths = [int((f.image[16, :, 1] > 100).sum()) for f in frames]
    assert all(abs(w - 6 * (k + 1)) <= 1 for k, w in enumerate(widths))
    assert [f.meta["index"] for f in frames] == list(range(7))
    assert src._cap is None  # released on close


def test_grey_video_frames_on_request(tmp_path: Path) -> None:
    path = tmp_path / "g.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (40, 24))
    for _ in range(2):
        writer.write(np.full((24, 40, 3), 90, np.uint8))
    writer.release()
    with OpenCVSource(path, color="gray") as src:
        assert [f.image.shape for f in src] == [(24, 40), (24, 40)]


class FakeCapture:
    """A stream that delivers ``good`` frames, then fails ``fail_opens`` reopen attempts."""

    opens = 0

    def __init__(self, plan: list[bool], fail_opens: int) -> None:
        self.plan, self.fail_opens, self.released = plan, fail_opens, 0

    def factory(self, target, api):
        outer = self
        FakeCapture.opens += 1

        class Cap:
            def isOpened(self) -> bool:
                if FakeCapture.opens > 1 and outer.fail_opens > 0:
                    outer.fail_opens -= 1
                    return False
                return True

            def read(self):
                ok = outer.plan.pop(0) if outer.plan else False
                return ok, (np.full((5, 7, 3), 1, np.uint8) if ok else None)

            def grab(self) -> bool:
                return True

            def get(self, prop: int) -> float:
                return 0.0

            def release(self) -> None:
                outer.released += 1

        return Cap()


def test_stream_reconnects_with_backoff_and_counts_drops() -> None:
    FakeCapture.opens = 0
    fake = FakeCapture([True, True, False, True], fail_opens=2)
    sleeps: list[float] = []
    src = OpenCVSource("rtsp://camera.local/stream", capture_factory=fake.factory, sleep=sleeps.append,
                       backoff=0.5, max_reconnects=5)
    it = iter(src)
    frames = [next(it) for _ in range(3)]
    assert len(frames) == 3 and src.stats.dropped == 1 and src.stats.reconnects == 1
    assert sleeps == [0.5, 1.0, 2.0]  # two failed reopenings, then success
    src.close()
    assert fake.released >= 3 and src.closed


def test_stream_gives_up_after_max_reconnects() -> None:
    FakeCapture.opens = 0
    fake = FakeCapture([True, False], fail_opens=99)
    src = OpenCVSource("rtsp://cam/x", capture_factory=fake.factory, sleep=lambda s: None, max_reconnects=3)
    with pytest.raises(CameraError, match="3 reconnects failed"):
        list(src)
    src.close()


def test_unopenable_sources_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(CameraError, match="unsupported stream scheme"):
        open_source("ftp://example.com/video")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(CameraError, match="cannot open"):
        open_source(str(tmp_path / "junk.mp4"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(round(s, 6))
        self.now += s


def test_pacer_keeps_a_fixed_schedule_and_does_not_burst() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock=clock, sleep=clock.sleep)
    pacer.wait()  # first tick at once
    clock.now += 0.05  # work takes 50 ms
    pacer.wait()
    assert clock.slept == [0.2]
    clock.now += 2.0  # a long stall: no burst of catch-up ticks afterwards
    pacer.wait()
    pacer.wait()
    assert clock.slept[-1] == pytest.approx(0.25) and pacer.late == 1


def test_paced_source_delivers_at_the_rate() -> None:
    clock = FakeClock()
    with SimulatedCamera("steel", n=5, size=SIZE, rate=10.0, clock=clock, sleep=clock.sleep) as src:
        stamps = []
        for _ in src:
            stamps.append(clock.now)
    assert np.allclose(np.diff(stamps), 0.1)


@pytest.mark.parametrize(("text", "per_second"), [("12", 12.0), ("12/s", 12.0), ("12fps", 12.0), ("90/min", 1.5),
                                                   ("90ppm", 1.5), ("7200/h", 2.0), (3, 3.0), (None, None)])
def test_parse_rate(text, per_second) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["fast", "-3", "0", "10/day"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(RateError):
        parse_rate(text)
