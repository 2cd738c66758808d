"""The camera simulator: determinism, ground truth, nuisances that never change the label."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from datasets.simulator import (
    GOOD,
    NO_NUISANCE,
    RECIPES,
    SimulationError,
    Simulator,
    sample_nuisance,
)

SIZE = (150, 190)  # odd, small, not square: catches h/w swaps and keeps tests fast
CASES = [(r, d) for r in RECIPES for d in RECIPES[r].defects]


def test_same_seed_same_pixels_and_different_seed_differs() -> None:
    sim = Simulator("flange", size=SIZE)
    a, b = sim.render("crack", seed=5), sim.render("crack", seed=5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.bbox == b.bbox
    assert not np.array_equal(a.image, sim.render("crack", seed=6).image)
    assert a.image.shape == SIZE and a.image.dtype == np.uint8


@pytest.mark.parametrize(("recipe", "defect"), CASES)
def test_every_defect_has_a_mask_inside_the_part(recipe: str, defect: str) -> None:
    sim = Simulator(recipe, size=SIZE)
    for seed in range(4):
        part = sim.render(defect, seed=seed, jpeg=False)
        assert part.label == defect and part.mask.shape == SIZE
        assert part.mask.any(), f"{defect} seed {seed} has an empty mask"
        # the part outline of the same scene, from a good render with the same seed
        outline = _outline(sim, seed)
        assert not (part.mask.astype(bool) & ~outline).any(), f"{defect} mask leaves the part"
        x, y, w, h = part.bbox
        ys, xs = np.nonzero(part.mask)
        assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())


def _outline(sim: Simulator, seed: int) -> np.ndarray:
    from datasets.simulator.simulator import _streams

    scene, _ = _streams(seed)
    n = sample_nuisance(scene)
    return sim.recipe.build(sim.size, n, scene).outline.astype(bool)


def test_good_parts_have_no_mask_and_no_bbox() -> None:
    part = Simulator("steel", size=SIZE).render(GOOD, seed=3)
    assert part.label == GOOD and part.bbox is None and not part.mask.any() and part.severity == 0


@pytest.mark.parametrize(("recipe", "defect"), CASES)
def test_nuisances_never_change_label_or_ground_truth(recipe: str, defect: str) -> None:
    """Same defect draw under no nuisance and under strong ones: same label and the same defect pixels."""
    sim = Simulator(recipe, size=SIZE)
    clean = sim.render(defect, seed=11, nuisance=NO_NUISANCE, severity=0.7)
    harsh = sample_nuisance(np.random.default_rng(99), strength=1.0)
    for n in (harsh, sample_nuisance(np.random.default_rng(7), strength=1.0)):
        noisy = sim.render(defect, seed=11, nuisance=n, severity=0.7, light_gain=0.6)
        assert noisy.label == clean.label
        if recipe == "steel":  # no part outline to move: the defect lands on the same pixels
            assert np.array_equal(noisy.mask, clean.mask)
        assert noisy.mask.any()
        assert not np.array_equal(noisy.image, clean.image)


@pytest.mark.parametrize(("recipe", "defect"), CASES)
def test_defect_only_changes_pixels_near_its_mask(recipe: str, defect: str) -> None:
    """Scene and nuisances are drawn independently of the label: outside the defect, a defective
    part is pixel for pixel the good part of the same seed (so a model cannot cheat on nuisances)."""
    sim = Simulator(recipe, size=SIZE)
    good = sim.render(GOOD, seed=21, jpeg=False)
    bad = sim.render(defect, seed=21, jpeg=False)
    near = cv2.dilate(bad.mask, np.ones((9, 9), np.uint8), iterations=2).astype(bool)
    diff = cv2.absdiff(good.image, bad.image)
    assert diff[~near].max() <= 2  # blur spreads edges by a pixel or two
    assert diff[near].max() >= 20


@pytest.mark.parametrize(("recipe", "defect"), CASES)
def test_default_severity_is_visible_at_training_size(recipe: str, defect: str) -> None:
    """At the lowest default severity the defect still changes the 224-px image clearly."""
    sim = Simulator(recipe, size=(1024, 1280))
    for seed in range(2):
        good = sim.render(GOOD, seed=seed, jpeg=False)
        bad = sim.render(defect, seed=seed, severity=0.5, jpeg=False)
        g, b = (cv2.resize(p.image, (224, 179), interpolation=cv2.INTER_AREA).astype(np.int16) for p in (good, bad))
        changed = int((np.abs(g - b) >= 20).sum())  # pixels of the 224-px image that changed by 20+ grey levels
        assert changed >= 4, f"{defect} (seed {seed}) is nearly invisible at 224 px: {changed} pixels changed"


def test_lower_severity_is_subtler() -> None:
    sim = Simulator("steel", size=SIZE)
    small, big = (sim.render("stain", seed=2, severity=s, jpeg=False).mask.sum() for s in (0.1, 1.0))
    assert small < big


def test_colour_frames_are_bgr() -> None:
    part = Simulator("flange", size=SIZE, color=True).render("pit", seed=1)
    assert part.image.shape == (*SIZE, 3)
    assert not np.array_equal(part.image[..., 0], part.image[..., 2])


@pytest.mark.parametrize(("kwargs", "call"), [
    ({"recipe": "nope"}, {}),
    ({}, {"label": "bubble"}),
    ({"recipe": "steel"}, {"label": "missing_hole"}),
    ({}, {"label": "scratch", "severity": 0.0}),
    ({}, {"label": "scratch", "severity": 1.5}),
])
def test_bad_parameters_raise_clear_errors(kwargs: dict, call: dict) -> None:
    with pytest.raises(SimulationError):
        Simulator(size=SIZE, **kwargs).render(**call)


def test_too_small_frames_are_refused() -> None:
    with pytest.raises(SimulationError, match="too small"):
        Simulator(size=(20, 500))
