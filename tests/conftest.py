"""Shared test settings: hypothesis profile and the external-service URLs."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ussdloop", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("ussdloop")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("USSDLOOP_TEST_REDIS")
    if not url:
        pytest.skip("USSDLOOP_TEST_REDIS is not set: no Redis to test against")
    return url


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("USSDLOOP_TEST_PG")
    if not url:
        pytest.skip("USSDLOOP_TEST_PG is not set: no PostgreSQL to test against")
    return url
