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
