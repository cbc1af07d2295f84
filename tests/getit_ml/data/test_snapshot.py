"""Snapshot ids change exactly when a folder's contents change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from getit_ml.data.snapshot import snapshot_id
from getit_ml.errors import UserError


def _folder(root: Path) -> Path:
    (root / "payments" / "date=2025-03-01").mkdir(parents=True)
    (root / "payments" / "date=2025-03-01" / "part-0.parquet").write_bytes(b"abc")
    (root / "customers.parquet").write_bytes(b"xyz")
    return root


def test_same_contents_same_id_regardless_of_times(tmp_path: Path) -> None:
    first = snapshot_id(_folder(tmp_path / "a"))
    second_root = _folder(tmp_path / "b")
    os.utime(second_root / "customers.parquet", (0, 0))
    assert snapshot_id(second_root) == first
    assert first.startswith("sha256:")


def test_a_changed_byte_or_a_moved_file_changes_the_id(tmp_path: Path) -> None:
    root = _folder(tmp_path / "a")
    before = snapshot_id(root)
    (root / "customers.parquet").write_bytes(b"xyZ")
    changed = snapshot_id(root)
    assert changed != before
    (root / "customers.parquet").rename(root / "customers2.parquet")
    assert snapshot_id(root) not in {before, changed}


def test_hidden_files_do_not_count(tmp_path: Path) -> None:
    root = _folder(tmp_path / "a")
    before = snapshot_id(root)
    (root / ".DS_Store").write_bytes(b"noise")
    assert snapshot_id(root) == before


def test_missing_or_empty_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a folder"):
        snapshot_id(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no files"):
        snapshot_id(tmp_path / "empty")
