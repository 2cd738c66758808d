"""Our own exception types. Each message tells the user what to do next."""


class DefectscopeError(Exception):
    """Base of every error defectscope raises on purpose."""


class ImageDecodeError(DefectscopeError):
    """The bytes are not an image we can decode (empty, random, truncated, unsupported)."""


class ImageTooLargeError(ImageDecodeError):
    """The image declares more pixels than allowed: refused before decoding (decompression bomb)."""


class BundleError(DefectscopeError):
    """A model bundle is missing, incomplete, or its parts disagree."""


class ExportParityError(BundleError):
    """The ONNX export does not reproduce the PyTorch model's probabilities."""


class ModelRegistryError(DefectscopeError):
    """Unknown architecture, weights that cannot be loaded, or a model registry operation that cannot be done."""


class PreprocessError(DefectscopeError):
    """The image does not fit the model card's preprocessing (for example the ROI is outside it)."""
