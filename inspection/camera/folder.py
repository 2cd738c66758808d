"""A folder of image files as a frame source: recursive, in sorted order, non-images skipped with a warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from inspection.camera.base import BaseSource, CameraError, log
from inspection.decode import read_image_file
from inspection.errors import ImageDecodeError
from inspection.imageinfo import IMAGE_SUFFIXES
from inspection.types import Frame

# The formats inspection.imageinfo can check before decoding.
IMAGE_EXTENSIONS = IMAGE_SUFFIXES  # the one definition (inspection.imageinfo)


def is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_images(root: Path, *, recursive: bool = True) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under ``root`` in a stable sorted order; hidden files are ignored."""
    if not root.is_dir():
        raise CameraError(f"{root} is not a folder")
    found = root.rglob("*") if recursive else root.iterdir()
    files = sorted((p for p in found if p.is_file() and not is_hidden(p, root)),
                   key=lambda p: p.relative_to(root).as_posix())
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    others = [p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    return images, others


class FolderSource(BaseSource):
    def __init__(self, root: str | Path, *, rate: float | None = None, recursive: bool = True,
                 color: Literal["bgr", "gray"] = "bgr", loop: bool = False, **kwargs) -> None:
        super().__init__(rate=rate, **kwargs)
        self.root = Path(root)
        self.name = str(self.root)
        self.color, self.loop = color, loop
        self.images, others = list_images(self.root, recursive=recursive)
        for path in others:
            log.warning("skipping %s: not an image file", path)
        self.stats.skipped += len(others)
        if not self.images:
            log.warning("%s contains no image files", self.root)

    def _frames(self) -> Iterator[Frame]:
        bad: set[Path] = set()
        while True:
            for index, path in enumerate(self.images):
                if path in bad:
                    continue
                try:
                    img, info = read_image_file(path, color=self.color)
                except ImageDecodeError as exc:
                    log.warning("skipping %s: %s", path, exc)
                    bad.add(path)
                    self.stats.skipped += 1
                    continue
                yield Frame(img, source=str(path), original_size=(info.height, info.width),
                            meta={"path": str(path), "index": index})
            if not self.loop or len(bad) == len(self.images):
                return
