"""Fixtures shared by every test package: small synthetic images and a tiny model bundle."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from inspection.bundle import Bundle
from tests.support import make_tiny_bundle


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def odd_bgr(rng: np.random.Generator) -> np.ndarray:
    """17 wide, 11 high: a height/width swap cannot go unnoticed."""
    return rng.integers(0, 256, size=(11, 17, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throwaway PostgreSQL cluster for the session (tests.plant_services); its admin URL."""
    from tests.plant_services import postgres

    with postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """An empty database of this test's own on the session's server."""
    from tests.plant_services import fresh_database

    return fresh_database(postgres_server, f"t_{uuid.uuid4().hex[:16]}")
