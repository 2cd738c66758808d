"""How QA reports store images, in one place: the batch runner encodes its thumbnails and heatmaps
so, and the report keeps them as they are (a report image is encoded once, in a worker).

WebP is about 3x smaller than JPEG at these sizes; JPEG where OpenCV lacks WebP. Sizes and
qualities measured in benchmarks/report_size.py: about 0.6 kB a thumbnail and 1.1 kB a heatmap.
"""

from __future__ import annotations

import cv2
import numpy as np

from inspection.imageops import shrink

EXT = ".webp" if cv2.haveImageWriter(".webp") else ".jpg"
THUMB_SIDE = 128  # px, longer side; the table draws thumbnails 64 px high (2x for high-DPI screens)
THUMB_QUALITY = 50
HEATMAP_SIDE = 200  # still shows where the heat lies when the report's zoom enlarges it
HEATMAP_QUALITY = 40  # a smooth colour map over the part takes a lower quality than the thumbnail


def encode_view(img: np.ndarray, side: int, quality: int) -> bytes | None:
    """``img`` with its longer side at most ``side``, as EXT; None if OpenCV cannot encode it."""
    flag = cv2.IMWRITE_WEBP_QUALITY if EXT == ".webp" else cv2.IMWRITE_JPEG_QUALITY
    ok, buf = cv2.imencode(EXT, shrink(img, side), [flag, quality])
    return buf.tobytes() if ok else None
