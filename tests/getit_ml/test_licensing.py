"""The Apache-2.0 guard on alibi / alibi-detect."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from getit_ml import licensing
from getit_ml.licensing import APACHE_LICENSED_CEILINGS, check_versions, read_lock_pins

REPO = Path(__file__).resolve().parents[2]


def _next_patch(ceiling: Version) -> str:
    """The release right after a ceiling, built here so no file spells out a BSL version."""
    return f"{ceiling.major}.{ceiling.minor}.{ceiling.micro + 1}"


@pytest.mark.parametrize("package", sorted(APACHE_LICENSED_CEILINGS))
def test_version_above_the_ceiling_is_a_violation(package: str) -> None:
    above = _next_patch(APACHE_LICENSED_CEILINGS[package])
    (violation,) = check_versions({package: above}, "here")
    assert violation.package == package
    assert "Business Source License" in violation.describe()


@pytest.mark.parametrize("package", sorted(APACHE_LICENSED_CEILINGS))
def test_ceiling_and_older_releases_pass(package: str) -> None:
    ceiling = APACHE_LICENSED_CEILINGS[package]
    assert check_versions({package: str(ceiling)}, "here") == []
    assert check_versions({package: f"{ceiling.major}.{ceiling.minor}.0"}, "here") == []


def test_names_are_compared_canonically_and_bad_versions_fail() -> None:
    above = _next_patch(APACHE_LICENSED_CEILINGS["alibi-detect"])
    assert len(check_versions({"Alibi_Detect": above}, "here")) == 1
    assert len(check_versions({"alibi": "not-a-version"}, "here")) == 1
    assert check_versions({"numpy": "9.9.9"}, "here") == []


def test_lock_parser_reads_pins_and_flags_ranges(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text(
        "# comment\n\nalibi==0.9.4 ; python_version >= '3.9'\n"
        "alibi_detect>=0.11\n--extra-index-url https://example.invalid\nnumpy==1.24.4\n",
        encoding="utf-8",
    )
    pins = read_lock_pins(lock)
    assert pins["alibi"] == "0.9.4"
    assert pins["numpy"] == "1.24.4"
    assert pins["alibi-detect"] == ">=0.11"
    # A range is not a proven Apache-2.0 release.
    assert [v.package for v in check_versions(pins, "x.lock")] == ["alibi-detect"]


def test_checked_in_locks_pin_the_last_apache_releases() -> None:
    monitoring = read_lock_pins(REPO / "requirements" / "monitoring.lock")
    for package, ceiling in APACHE_LICENSED_CEILINGS.items():
        assert monitoring[package] == str(ceiling)
    platform = read_lock_pins(REPO / "requirements" / "platform.lock")
    assert check_versions(platform, "platform.lock") == []


def test_command_line_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.lock"
    good.write_text("alibi==0.9.4\nalibi-detect==0.11.4\n", encoding="utf-8")
    bad = tmp_path / "bad.lock"
    bad.write_text(f"alibi=={_next_patch(APACHE_LICENSED_CEILINGS['alibi'])}\n", encoding="utf-8")
    assert licensing.main(["--lock", str(good)]) == 0
    assert licensing.main(["--lock", str(bad)]) == 1
    assert "Business Source License" in capsys.readouterr().err
    assert licensing.main(["--lock", str(tmp_path / "missing.lock")]) == 2
