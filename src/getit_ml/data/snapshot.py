"""Content ids for data folders: the cache key of every pipeline step that reads changing data.

A Kubeflow step is cached on its inputs. A step that reads a folder by path would be served from
the cache after the folder's contents changed; giving it the folder's snapshot id as an input
makes the cache key change exactly when the data does. The id is a sha256 over every file's
relative path and bytes, in sorted order, so it does not depend on timestamps or listing order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from getit_ml.errors import UserError

_CHUNK = 1 << 20


def snapshot_id(folder: Path) -> str:
    """``sha256:<hex>`` of the folder's files (paths and contents); hidden files are skipped."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: cannot take a snapshot of it")
    digest = hashlib.sha256()
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip
    if not files:
        raise UserError(f"{folder} holds no files")
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()}"
