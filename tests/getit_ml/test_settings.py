"""Settings come from GETIT_ML_* variables only, validate loudly and document themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from getit_ml.errors import SettingsError
from getit_ml.settings import PlatformSettings, describe_settings, load_settings, mask_password


def test_defaults_are_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GETIT_ML_HOME", "GETIT_ML_REDIS_URL", "CI", "GETIT_ML_CI"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.home == Path(".getit-ml")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.ci is False


def test_environment_variables_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GETIT_ML_HOME", "/tmp/elsewhere")
    monkeypatch.setenv("GETIT_ML_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CI", "true")
    settings = load_settings()
    assert settings.home == Path("/tmp/elsewhere")
    assert settings.log_level == "DEBUG"
    assert settings.ci is True


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GETIT_ML_LOG_LEVEL", "ERROR")
    assert load_settings(log_level="WARNING").log_level == "WARNING"


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GETIT_ML_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("GETIT_ML_SERVICE_TIMEOUT_S", "-1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "GETIT_ML_LOG_LEVEL" in message
    assert "'LOUD'" in message
    assert "GETIT_ML_SERVICE_TIMEOUT_S" in message


def test_unknown_setting_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in a GETIT_ML_ variable is an error, not a silently ignored value."""
    monkeypatch.setenv("GETIT_ML_REDIS_ULR", "redis://elsewhere:6379/0")
    with pytest.raises(SettingsError, match="GETIT_ML_REDIS_ULR: no such setting"):
        load_settings()


def test_every_setting_is_documented() -> None:
    for name, field in PlatformSettings.model_fields.items():
        assert field.description, f"setting {name} has no docstring"


def test_described_settings_mask_passwords() -> None:
    settings = load_settings(postgres_dsn="postgresql://shop:s3cret@db:5432/getit")
    rows = {variable: value for variable, value, _ in describe_settings(settings)}
    assert rows["GETIT_ML_POSTGRES_DSN"] == "postgresql://shop:***@db:5432/getit"
    assert "CI" in rows


def test_mask_password_leaves_urls_without_one_alone() -> None:
    assert mask_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert mask_password("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"


def test_the_transformers_bounds_default_to_a_fast_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults put a store failure's 503 within 250 ms of normal latency, keep the scorer's
    per-call timeout far below the start-up wait, and probe about once a second."""
    for name in PlatformSettings.model_fields:
        monkeypatch.delenv(f"GETIT_ML_{name.upper()}", raising=False)
    settings = load_settings()
    assert settings.feature_read_deadline_s <= 0.25
    assert settings.online_store_read_timeout_s >= settings.feature_read_deadline_s
    assert settings.online_store_connect_timeout_s <= 0.5
    assert settings.predictor_call_timeout_s <= 5
    assert settings.store_breaker_failures >= 1
    assert 0 < settings.store_breaker_reset_s <= 2  # recovery within a second or two
    assert settings.dependency_probe_interval_s == 1.0
    assert settings.dependency_probe_timeout_s < settings.dependency_probe_interval_s


def test_the_transformers_bounds_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GETIT_ML_FEATURE_READ_DEADLINE_S", "0.05")
    monkeypatch.setenv("GETIT_ML_FEATURE_READ_WORKERS", "16")
    monkeypatch.setenv("GETIT_ML_PREDICTOR_CALL_TIMEOUT_S", "1.5")
    settings = load_settings()
    assert settings.feature_read_deadline_s == 0.05
    assert settings.feature_read_workers == 16
    assert settings.predictor_call_timeout_s == 1.5
    monkeypatch.setenv("GETIT_ML_FEATURE_READ_DEADLINE_S", "0")
    monkeypatch.setenv("GETIT_ML_STORE_BREAKER_FAILURES", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "GETIT_ML_FEATURE_READ_DEADLINE_S" in str(caught.value)
    assert "GETIT_ML_STORE_BREAKER_FAILURES" in str(caught.value)
