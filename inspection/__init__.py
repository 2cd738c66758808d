"""Runtime core of defectscope: frame -> verdict.

Uses numpy, OpenCV, torch and onnxruntime only; never imports ``training``, ``serving``
or ``datasets`` (they build on this package, not the other way round).
"""

from inspection import limits  # noqa: F401  (first: OpenCV's decoder limit must precede any cv2 import)
from inspection.errors import (
    BundleError,
    DefectscopeError,
    ExportParityError,
    ImageDecodeError,
    ImageTooLargeError,
)
from inspection.types import Frame, Outcome, Verdict

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "DefectscopeError",
    "ExportParityError",
    "Frame",
    "ImageDecodeError",
    "ImageTooLargeError",
    "Outcome",
    "Verdict",
    "__version__",
]
