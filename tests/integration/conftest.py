"""Fixtures for the real Redis and PostgreSQL servers, addressed through the settings."""

from __future__ import annotations

import pytest

from getit_ml.services import postgres_unreachable, redis_unreachable
from getit_ml.settings import PlatformSettings, load_settings
from tests.support.services import require_service


@pytest.fixture(scope="session")
def platform_settings() -> PlatformSettings:
    return load_settings()


@pytest.fixture(scope="session")
def redis_url(platform_settings: PlatformSettings) -> str:
    reason = redis_unreachable(platform_settings.redis_url, platform_settings.service_timeout_s)
    require_service(reason, platform_settings.ci)
    return platform_settings.redis_url


@pytest.fixture(scope="session")
def postgres_dsn(platform_settings: PlatformSettings) -> str:
    dsn = platform_settings.postgres_dsn
    reason = postgres_unreachable(dsn, platform_settings.service_timeout_s)
    require_service(reason, platform_settings.ci)
    return dsn
