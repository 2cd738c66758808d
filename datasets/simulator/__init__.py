"""Camera simulator: realistic inspection frames with known ground truth, deterministic from a seed.

``Simulator(recipe).render(label, severity=, seed=)`` renders one part; ``LineSimulator``
streams parts at a rate with a defect rate and scheduled process events (see
``datasets.simulator.line`` for the event schedule). Recipes: ``RECIPES``; defect types
of a recipe: ``RECIPES[name].defects``.
"""

from datasets.simulator.defects import DEFECTS
from datasets.simulator.line import LightingDrift, LineEvent, LinePart, LineSimulator, ToolFault, parse_event
from datasets.simulator.nuisance import NO_NUISANCE, Nuisance, sample_nuisance
from datasets.simulator.recipes import DEFAULT_RECIPE, RECIPES, Recipe
from datasets.simulator.simulator import (
    DEFAULT_SEVERITY,
    GOOD,
    SimulatedPart,
    SimulationError,
    Simulator,
    get_recipe,
)

DEFECT_TYPES = tuple(DEFECTS)

__all__ = [
    "DEFAULT_RECIPE",
    "DEFAULT_SEVERITY",
    "DEFECTS",
    "DEFECT_TYPES",
    "GOOD",
    "NO_NUISANCE",
    "RECIPES",
    "LightingDrift",
    "LineEvent",
    "LinePart",
    "LineSimulator",
    "Nuisance",
    "Recipe",
    "SimulatedPart",
    "SimulationError",
    "Simulator",
    "ToolFault",
    "get_recipe",
    "parse_event",
    "sample_nuisance",
]
