"""Albumentations pipeline from an AugmentConfig; runs on prepared uint8 images (model size)."""

from __future__ import annotations

import albumentations as A
import cv2

from training.config import AugmentConfig


def build_augment(cfg: AugmentConfig, size: tuple[int, int], seed: int = 0,
                  first: A.BasicTransform | None = None) -> A.Compose:
    """Geometry first, then photometric changes; border pixels are reflected, never black.

    ``first`` runs before them all (synthesized defects: flips and turns then move defect and mask together).

    90-degree rotations only apply to square inputs (they would swap height and width).
    Black borders would teach the model that a dark edge means "augmented", a cue that never
    appears on the line.
    """
    ops: list[A.BasicTransform] = [] if first is None else [first]
    if cfg.hflip:
        ops.append(A.HorizontalFlip(p=cfg.hflip))
    if cfg.vflip:
        ops.append(A.VerticalFlip(p=cfg.vflip))
    if cfg.rotate90 and size[0] == size[1]:
        ops.append(A.RandomRotate90(p=cfg.rotate90))
    if cfg.affine_p and cfg.shift and not (cfg.scale or cfg.rotate_limit):
        # whole-pixel offsets: bilinear sampling at integer positions copies pixels exactly
        px = (round(cfg.shift * size[0]), round(cfg.shift * size[1]))
        ops.append(A.Affine(translate_px={"y": (-px[0], px[0]), "x": (-px[1], px[1])},
                            border_mode=cv2.BORDER_REFLECT_101, p=cfg.affine_p))
    elif cfg.affine_p and (cfg.shift or cfg.scale or cfg.rotate_limit):
        ops.append(A.Affine(
            translate_percent=(-cfg.shift, cfg.shift), scale=(1 - cfg.scale, 1 + cfg.scale),
            rotate=(-cfg.rotate_limit, cfg.rotate_limit), border_mode=cv2.BORDER_REFLECT_101, p=cfg.affine_p,
        ))
    if cfg.brightness_contrast_p and (cfg.brightness or cfg.contrast):
        ops.append(A.RandomBrightnessContrast(cfg.brightness, cfg.contrast, p=cfg.brightness_contrast_p))
    if cfg.blur_p:
        ops.append(A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2), p=cfg.blur_p))
    if cfg.noise_p:
        ops.append(A.GaussNoise(std_range=(0.01, 0.05), p=cfg.noise_p))
    return A.Compose(ops, seed=seed)
