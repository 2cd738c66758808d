"""Which recipe suits a dataset: whole-frame classification, or a defect map at native resolution.

Shrinking a frame to a 160-pixel side keeps a scratch across a 200x200 steel patch but erases a
ten-pixel crack on a 500x1260 commutator (KolektorSDD: ROC AUC 0.83 that way). The native recipe
needs masks to find defects in its crops, so it is chosen when

* most defect images (``MASKED_SHARE``) have a mask,
* the frames are large: a long side over ``LARGE`` times the whole-frame input's (below that the
  whole-frame recipe loses little and its fixed input is faster), and
* the thinnest defects (the tenth percentile of the masks' stroke width) would be thinner than
  ``VANISH_PX`` pixels at the whole-frame input, i.e. they would all but vanish there.

Its scale keeps those thin defects at least ``KEEP_PX`` model pixels wide, in steps of a half
(OpenCV decodes JPEGs directly at 1/2, 1/4, 1/8), so a model never sees more pixels than it needs.
A fixtured part keeps the whole-frame recipe for now: native training around a located part is not
built or measured yet. Every rule gives its reason; ``recipe=`` in the config overrides it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.layout import Dataset
from training.config import TrainConfig, TrainConfigError

MASKED_SHARE = 0.8
VANISH_PX = 1.5
LARGE = 2.0
KEEP_PX = 4.0
SCALES = (1.0, 0.5, 0.25, 0.125)
NATIVE_CROP = 256
MASKS_READ = 200  # enough masks to know the defects' widths
GOOD_ONLY_SCALE = 0.5  # large frames without defects to measure: half resolution (a JPEG decodes at it directly)


@dataclass(frozen=True)
class DefectSizes:
    frame: tuple[int, int]  # (h, w) of the frames, camera pixels
    masked: int  # defect images with a mask
    defects: int  # defect images
    thin_px: float | None  # tenth percentile of the defects' stroke width, camera pixels


@dataclass(frozen=True)
class Choice:
    recipe: str  # "native" or "whole-frame"
    scale: float | None
    reason: str


def frame_size(dataset: Dataset) -> tuple[int, int] | None:
    """(h, w) of the training frames, from the header of the first readable one."""
    from inspection.errors import DefectscopeError
    from inspection.imageinfo import read_image_info

    for sample in dataset.split("train")[:20]:
        try:
            info = read_image_info(dataset.abspath(sample).read_bytes())
            return info.height, info.width
        except (OSError, DefectscopeError):  # an unreadable image is reported by the loader; try the next
            continue
    return None


def measure(dataset: Dataset, pass_classes: tuple[str, ...]) -> DefectSizes:
    """The frame size and the defects' widths, from the training split's masks."""
    defects = [s for s in dataset.split("train") if s.label not in pass_classes]
    masked = [s for s in defects if s.mask]
    frame = frame_size(dataset) or (0, 0)
    widths: list[float] = []
    for s in masked[:MASKS_READ]:
        m = cv2.imread(str(dataset.root / s.mask), cv2.IMREAD_GRAYSCALE)
        if m is None:
            continue
        m = (m > 0).astype(np.uint8)
        n, comp = cv2.connectedComponents(m, connectivity=8)
        dist = cv2.distanceTransform(m, cv2.DIST_L2, 3)
        for k in range(1, n):  # a component's stroke width: twice its deepest interior distance
            widths.append(2.0 * float(dist[comp == k].max()))
    thin = float(np.percentile(widths, 10)) if widths else None
    return DefectSizes(frame, len(masked), len(defects), thin)


def native_scale(thin_px: float) -> float:
    """The smallest scale of ``SCALES`` that keeps ``thin_px`` at least ``KEEP_PX`` model pixels."""
    for s in reversed(SCALES):
        if thin_px * s >= KEEP_PX:
            return s
    return SCALES[0]


def choose(sizes: DefectSizes, whole_frame_side: int, fixture: str, good_only: bool = False) -> Choice:
    whole = "whole-frame"
    if fixture != "none":
        return Choice(whole, None, f"the part is found in the frame (fixture {fixture}): whole-frame recipe")
    if good_only:  # no defects to measure: what can be small must not be shrunk away
        if max(sizes.frame) <= LARGE * whole_frame_side:
            return Choice(whole, None, f"good parts only, {sizes.frame[1]}x{sizes.frame[0]} frames: whole-frame "
                                       "recipe")
        return Choice("native", GOOD_ONLY_SCALE, f"good parts only, {sizes.frame[1]}x{sizes.frame[0]} frames: a "
                                                 f"defect's size is unknown, so native recipe at scale "
                                                 f"{GOOD_ONLY_SCALE:g} (a defect {KEEP_PX / GOOD_ONLY_SCALE:g} px "
                                                 f"wide stays {KEEP_PX:g} model px)")
    if sizes.defects == 0 or sizes.masked < MASKED_SHARE * sizes.defects or sizes.thin_px is None:
        return Choice(whole, None, f"{sizes.masked} of {sizes.defects} defect images have a mask (the native "
                                   f"recipe needs {MASKED_SHARE:.0%}): whole-frame recipe")
    if max(sizes.frame) <= LARGE * whole_frame_side:
        return Choice(whole, None, f"{sizes.frame[1]}x{sizes.frame[0]} frames are at most {LARGE:g}x the "
                                   f"{whole_frame_side}-px whole-frame input: whole-frame recipe")
    shrink = whole_frame_side / max(sizes.frame)
    at_whole = sizes.thin_px * shrink
    if at_whole >= VANISH_PX:
        return Choice(whole, None, f"the thinnest defects stay {at_whole:.1f} px wide at a {whole_frame_side}-px "
                                   "long side: whole-frame recipe")
    scale = native_scale(sizes.thin_px)
    return Choice("native", scale, f"the thinnest defects are {sizes.thin_px:.0f} px wide in "
                                   f"{sizes.frame[1]}x{sizes.frame[0]} frames and would shrink to {at_whole:.1f} px "
                                   f"at a {whole_frame_side}-px long side: native recipe (segdec, defect maps) at "
                                   f"scale {scale:g}, keeping them {sizes.thin_px * scale:.0f} px")


WHOLE_FRAME_DEFAULTS = {"arch": "defectnet", "epochs": 40, "patience": 10, "monitor": "macro_f1"}
# a map model keeps sharpening its map long after val accuracy settles, and a val split with a
# handful of defects picks a noisy "best" epoch: run the cosine schedule out and keep the last one
# (KolektorSDD fold 0: AP 0.965 after 40 epochs, 0.992-1.000 after 100-120; best-by-val-loss
# picked epoch 47 of 100, test AP 0.984)
NATIVE_DEFAULTS = {"arch": "segdec", "epochs": 120, "patience": 0, "monitor": "last"}
# a good-only val split holds no defects, so its figures cannot pick an epoch: run the schedule out
GOOD_ONLY_DEFAULTS = {"patience": 0, "monitor": "last"}
# The whole-frame defaults were tuned on sets that give their 40 epochs 2,500+ optimizer steps (NEU-DET
# 2,700, the 2,000-frame simulated line 3,500); a line's first 400 frames give them 700, and a network
# from scratch has not learnt by then (60 % test accuracy; with the steps, BENCHMARKS.md "Few examples")
REFERENCE_STEPS = 2500


def stretch_to_steps(config: TrainConfig, n_train: int, *, patience: bool = True) -> tuple[TrainConfig, str]:
    """A small training split's epochs, patience (unless set) and earliest stop (unless set) stretched
    so the run gets the steps the defaults were tuned on (the time a large set takes); a large split is
    left alone."""
    steps = max(1, n_train // config.batch_size)
    factor = REFERENCE_STEPS / (steps * (config.epochs or 1))
    if factor <= 1:
        return config, ""
    epochs = math.ceil(config.epochs * factor)
    changes: dict[str, int] = {"epochs": epochs}
    if config.min_epochs == TrainConfig.min_epochs:
        changes["min_epochs"] = math.ceil(config.min_epochs * factor)
    if patience and config.patience:
        changes["patience"] = math.ceil(config.patience * factor)
    return config.with_(**changes), (f"; {n_train} training images give {steps} steps an epoch, so {epochs} epochs "
                                     f"(patience {changes.get('patience', config.patience)}) for the "
                                     f"{REFERENCE_STEPS:,} steps the defaults need")


def resolve(config: TrainConfig, dataset: Dataset) -> tuple[TrainConfig, str]:
    """``config`` with its recipe and the recipe's defaults filled in, and why that recipe."""
    from inspection.card import MAP_ARCHS

    sizes = measure(dataset, tuple(dataset.info.pass_classes))
    recipe, scale = config.recipe, config.scale
    if recipe != "auto":
        why = f"{recipe} recipe, as asked"
    elif config.arch is not None:
        recipe = "native" if config.arch in MAP_ARCHS else "whole-frame"
        why = f"{recipe} recipe: arch {config.arch} was asked for"
    elif config.scale is not None or config.crop is not None or config.tile is not None:
        recipe, why = "native", "native recipe: a scale, crop or tile was asked for"
    else:
        choice = choose(sizes, config.long_side, config.fixture, bool(config.good_only))
        recipe, scale, why = choice.recipe, choice.scale, choice.reason
    defaults = {**(NATIVE_DEFAULTS if recipe == "native" else WHOLE_FRAME_DEFAULTS),
                **(GOOD_ONLY_DEFAULTS if config.good_only else {})}
    stretch = recipe == "whole-frame" and not config.good_only and config.epochs is None
    own_patience = config.patience is not None
    config = config.with_(recipe=recipe, **{k: v for k, v in defaults.items() if getattr(config, k) is None})
    if recipe == "whole-frame":
        if config.arch in MAP_ARCHS:
            raise TrainConfigError(f"arch {config.arch} is a native-resolution defect-map network: "
                                   "use recipe native (or leave recipe auto)")
        if stretch:
            config, more = stretch_to_steps(config, len(dataset.split("train")), patience=not own_patience)
            why += more
        return config, why
    if config.arch not in MAP_ARCHS:
        raise TrainConfigError(f"the native recipe trains a defect-map network ({', '.join(MAP_ARCHS)}), "
                               f"not {config.arch}")
    if config.fixture != "none":
        raise TrainConfigError("the native recipe does not handle a fixtured part yet: use --fixture none "
                               "or the whole-frame recipe")
    if scale is None:
        scale = native_scale(sizes.thin_px) if sizes.thin_px is not None else GOOD_ONLY_SCALE
    fh, fw = (max(1, int(v * scale)) for v in sizes.frame)
    crop = config.crop or max(32, min(NATIVE_CROP, fh // 16 * 16, fw // 16 * 16))
    return config.with_(scale=scale, crop=crop, input_size=(crop, crop)), why
