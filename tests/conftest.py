"""Fixtures shared by the integration and end-to-end tests."""

from __future__ import annotations

import pytest

from triumvir.consensus.config import ENGINES


@pytest.fixture(params=ENGINES, scope="module")
def engine(request: pytest.FixtureRequest) -> str:
    """Every real-process test runs once per consensus engine."""
    return request.param
