"""The training configuration: one frozen dataclass, saved resolved next to the run's outputs.

Defaults are chosen for a 2-core CPU: mobilenet_v3_small with a 160-pixel long side (the
camera's aspect ratio kept) trains at about 150-250 images per second there.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from inspection.errors import DefectscopeError

GRAY_MEAN, GRAY_STD = (0.5,), (0.25,)
RGB_MEAN, RGB_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MONITORS = ("macro_f1", "accuracy", "loss", "last")
BALANCE = ("loss", "sampler", "none")
RECIPES = ("auto", "native", "whole-frame")  # see training/recipe.py


class TrainConfigError(DefectscopeError):
    """A training option is out of range or contradicts another one."""


@dataclass(frozen=True)
class AugmentConfig:
    """Albumentations settings that suit inspection images; set a probability to 0 to turn one off.

    Flips and 90-degree rotations are on because most surface defects look the same mirrored;
    turn them off for parts with a fixed orientation (text, connectors).
    """

    hflip: float = 0.5
    vflip: float = 0.5
    rotate90: float = 0.5
    # Rotation, scaling and shifts are off by default (affine_p=0): measured on the simulated
    # line, resampling blurs 1-2 pixel defects (pits, hairline scratches) and these ops
    # stretched the plateau before a from-scratch network starts to learn from ~250 steps to
    # over 500. Turn them on (e.g. affine_p=0.5) for parts that really shift or turn in the
    # frame; with rotate_limit=scale=0 shifts are whole pixels, so lossless.
    rotate_limit: float = 0.0  # degrees
    shift: float = 0.06  # fraction of the image size
    scale: float = 0.0  # +- fraction
    affine_p: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    brightness_contrast_p: float = 0.5
    blur_p: float = 0.05
    noise_p: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or value < 0:
                raise TrainConfigError(f"augment.{f.name} must be a non-negative number, not {value!r}")
            if (f.name.endswith("_p") or f.name in ("hflip", "vflip", "rotate90")) and value > 1:
                raise TrainConfigError(f"augment.{f.name} is a probability: use a value in [0, 1]")


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    # "whole-frame" resizes each frame to input_size (defectnet); "native" trains a defect-map network
    # (segdec) on crops at the camera's resolution times ``scale`` and infers whole frames; "auto"
    # picks from the data (training/recipe.py says why). None below: the recipe's default.
    recipe: str = "auto"
    arch: str | None = None  # whole-frame: defectnet (trains from scratch on a CPU); native: segdec
    scale: float | None = None  # native: model pixels per camera pixel (None: from the defect masks)
    crop: int | None = None  # native: training crop side in model pixels (None: 256, or the frame)
    tile: int | None = None  # native: the bundle infers frames in overlapping tiles of this side (memory)
    input_size: tuple[int, int] | None = None  # (height, width); None: long_side, camera aspect kept
    long_side: int = 160
    # "auto" takes the dataset's hint (dataset.json "preprocess", written by 'dataset synth'), else rgb / none
    color: str = "auto"  # "rgb", "gray" or "auto"
    fixture: str = "auto"  # "bright", "dark" (crop around the part: inspection/fixture.py), "none" or "auto"
    fixture_margin: float = 0.05
    # weight of the auxiliary defect-mask loss when the dataset has masks (0 turns it off): pixel
    # supervision teaches a from-scratch net where defects are within a few epochs (mask_loss.py)
    mask_loss: float = 1.0
    # good parts only (training/synth_defects.py): train and val keep their pass-class images, defects are
    # synthesized on them and thresholds come from a false-reject budget. None: on when the training
    # split holds pass-class images only
    good_only: bool | None = None
    # share of good training images given a synthesized defect (labelled "anomaly"); None: 0.5 for a
    # good-only run or a fine-tune of a model that synthesized, else 0
    synthesize: float | None = None
    mean: tuple[float, ...] | None = None  # None: ImageNet for rgb, 0.5/0.25 for gray
    std: tuple[float, ...] | None = None
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in captured pixels
    weights: str | None = None  # torchvision weights name or a local .pth/.safetensors file
    init_from: str | None = None  # a bundle to fine-tune (its arch and preprocessing win)
    name: str | None = None  # model name on the card; default: the dataset folder name
    # which images train, validate and test (training/data_view.py): a cross-validation fold held
    # out as test, and/or a share of train carved for val when the dataset has none
    fold: int | None = None
    carve_val: float | None = None
    # cross-fitting (training/crossfit.py): K folds (the dataset's own, or assigned in memory); with
    # fold None, the final model trains on all of them
    folds: int | None = None
    epochs: int | None = None  # whole-frame 40; native 120
    batch_size: int = 16  # small batches: twice the steps per CPU-second, which is what from-scratch needs
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.05
    bn_momentum: float = 0.1  # BatchNorm running-stat momentum (see model_init.set_bn_momentum)
    patience: int | None = None  # epochs without improvement before early stopping; 0 off (whole-frame 10, native 0)
    min_epochs: int = 15  # never stop early before this: from scratch, learning starts after a plateau
    monitor: str | None = None  # whole-frame macro_f1; native last (see recipe.py)
    balance: str = "loss"  # class imbalance: weighted loss, weighted sampler, or none
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    time_limit_min: float | None = None  # stop early (keeping the best epoch) after this many minutes
    target_recall: float = 0.995  # defect recall the fail threshold must reach on validation
    # the review band (calibration.py): automatic fails reject at most this share of good parts; None: no band
    review_false_reject: float | None = 0.01
    review_budget: float | None = None  # instead: at most this share of all parts goes to review
    no_defects_fallback: bool = False  # calibrate without defects in val: keep 0.5, say so
    device: str = "auto"  # auto, cpu, cuda
    amp: bool = True  # mixed precision, CUDA only
    threads: int | None = None  # torch intra-op threads; default: all cores this process may use
    num_workers: int = 0  # 0 suits 2 cores: images are cached decoded, augmentation is cheap
    eval_batch_size: int = 128
    export_onnx: bool = True

    # fields that change nothing in the result, so a resumed run may differ in them (the fallback only
    # decides whether a run without val defects refuses or keeps 0.5: any finished run is the same)
    RUNTIME_ONLY = ("threads", "num_workers", "device", "eval_batch_size", "time_limit_min", "no_defects_fallback")

    def __post_init__(self) -> None:
        if self.color not in ("rgb", "gray", "auto"):
            raise TrainConfigError(f"color must be 'rgb', 'gray' or 'auto', not {self.color!r}")
        if self.fixture not in ("bright", "dark", "none", "auto"):
            raise TrainConfigError(f"fixture must be 'bright', 'dark', 'none' or 'auto', not {self.fixture!r}")
        if self.recipe not in RECIPES:
            raise TrainConfigError(f"recipe must be one of {RECIPES}, not {self.recipe!r}")
        if self.scale is not None and not 0 < self.scale <= 4:
            raise TrainConfigError(f"scale must lie in (0, 4], not {self.scale}")
        if self.crop is not None and (self.crop < 32 or self.crop % 16):
            raise TrainConfigError(f"crop must be a multiple of 16 of at least 32, not {self.crop}")
        if self.monitor is not None and self.monitor not in MONITORS:
            raise TrainConfigError(f"monitor must be one of {MONITORS}, not {self.monitor!r}")
        if self.balance not in BALANCE:
            raise TrainConfigError(f"balance must be one of {BALANCE}, not {self.balance!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise TrainConfigError(f"device must be auto, cpu or cuda, not {self.device!r}")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 16):
            raise TrainConfigError(f"input_size must be (height, width), each >= 16, not {self.input_size}")
        checks = {
            "epochs": self.epochs is None or self.epochs >= 1, "long_side": self.long_side >= 16,
            "batch_size": self.batch_size >= 2,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0, "patience": self.patience is None or self.patience >= 0,
            "min_epochs": self.min_epochs >= 0,
            "label_smoothing": 0 <= self.label_smoothing < 1, "mask_loss": self.mask_loss >= 0,
            "fixture_margin": 0 <= self.fixture_margin <= 1,
            "bn_momentum": 0 < self.bn_momentum <= 1, "warmup_epochs": self.warmup_epochs >= 0,
            "target_recall": 0 < self.target_recall <= 1, "num_workers": self.num_workers >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise TrainConfigError(f"invalid value for {', '.join(bad)}: see 'defectscope train --help'")
        for name in ("review_false_reject", "review_budget"):
            if getattr(self, name) is not None and not 0 <= getattr(self, name) < 1:
                raise TrainConfigError(f"{name} must lie in [0, 1)")
        if self.synthesize is not None and not 0 <= self.synthesize < 1:
            raise TrainConfigError(f"synthesize is the share of good images given a defect: use [0, 1), "
                                   f"not {self.synthesize}")
        if self.good_only and self.synthesize == 0:
            raise TrainConfigError("a good-only run learns from synthesized defects: synthesize must be above 0")
        if self.folds is not None and self.folds < 2:
            raise TrainConfigError(f"cross-fitting needs at least 2 folds, not {self.folds}")
        if self.fold is not None and self.fold < 0:
            raise TrainConfigError(f"fold must be a fold id (0, 1, ...), not {self.fold}")
        if self.carve_val is not None and not 0 < self.carve_val < 1:
            raise TrainConfigError(f"carve_val is a share of train: use a value between 0 and 1, not {self.carve_val}")
        if self.weights and self.init_from:
            raise TrainConfigError("give either weights (pretrained backbone) or init_from (a bundle), not both")

    @property
    def resolved_mean(self) -> tuple[float, ...]:
        return tuple(self.mean) if self.mean is not None else (GRAY_MEAN if self.color == "gray" else RGB_MEAN)

    @property
    def resolved_std(self) -> tuple[float, ...]:
        return tuple(self.std) if self.std is not None else (GRAY_STD if self.color == "gray" else RGB_STD)

    @property
    def out_path(self) -> Path:
        return Path(self.out)

    def with_(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def result_fields(self) -> dict[str, Any]:
        """The fields that decide the trained weights (compared before resuming)."""
        return {k: v for k, v in json.loads(self.to_json()).items() if k not in self.RUNTIME_ONLY}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise TrainConfigError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        values = dict(raw)
        for key in ("input_size", "mean", "std", "roi"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        aug = values.get("augment")
        if isinstance(aug, dict):
            values["augment"] = augment_from_dict(aug)
        try:
            return cls(**values)
        except TypeError as exc:
            raise TrainConfigError(f"training config is incomplete: {exc}") from None


def augment_from_dict(raw: dict[str, Any], base: AugmentConfig | None = None) -> AugmentConfig:
    known = {f.name for f in fields(AugmentConfig)}
    unknown = set(raw) - known
    if unknown:
        raise TrainConfigError(f"unknown augmentation options {sorted(unknown)}; known: {sorted(known)}")
    return replace(base or AugmentConfig(), **raw)


def parse_overrides(pairs: list[str]) -> dict[str, float]:
    """``["hflip=0", "rotate_limit=5"]`` -> {"hflip": 0.0, "rotate_limit": 5.0} (the CLI's --augment)."""
    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise TrainConfigError(f"--augment takes KEY=NUMBER (for example vflip=0), not {pair!r}") from None
    return out
