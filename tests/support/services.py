"""The skip-or-fail rule for tests that need a real backing service.

Locally, a missing Redis or PostgreSQL skips the test with the reason. Under ``CI=true`` the same
absence fails it: CI machines have the services, so a skip there would hide a broken backend.
"""

from __future__ import annotations

import pytest


def require_service(unreachable_reason: str | None, ci: bool) -> None:
    """Return if the service answered; otherwise skip (locally) or fail (under CI)."""
    if unreachable_reason is None:
        return
    if ci:
        pytest.fail(f"{unreachable_reason} (CI=true: integration tests must not skip)")
    pytest.skip(unreachable_reason)
