"""Service checks give reasons, and the test gate skips locally but fails under CI."""

from __future__ import annotations

import pytest

from getit_ml.services import free_port, postgres_unreachable, redis_unreachable
from tests.support.services import require_service


def test_unreachable_redis_gives_a_reason() -> None:
    reason = redis_unreachable(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    assert reason is not None
    assert "Redis at" in reason


def test_unreachable_postgres_gives_a_reason_without_the_password() -> None:
    reason = postgres_unreachable(
        f"postgresql://shop:s3cret@127.0.0.1:{free_port()}/test", timeout_s=1
    )
    assert reason is not None
    assert "PostgreSQL at" in reason
    assert "s3cret" not in reason


def test_gate_passes_when_the_service_answers() -> None:
    require_service(None, ci=True)


def test_gate_skips_locally() -> None:
    with pytest.raises(pytest.skip.Exception, match="down"):
        require_service("down", ci=False)


def test_gate_fails_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="must not skip"):
        require_service("down", ci=True)
