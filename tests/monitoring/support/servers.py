"""Processes and HTTP helpers for the monitoring tests: free ports, servers that are always
stopped, a webhook receiver, the reference files in the training pipeline's export format."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from getit_ml.monitoring.alerts import AlertReceiver
from getit_ml.monitoring.schema import REFERENCE_FILE, SCHEMA_FILE, Reference
from getit_ml.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[3]


def write_reference(reference: Reference, directory: Path) -> Path:
    """``reference.parquet`` and ``feature_schema.json`` as ``export_reference`` writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    columns: dict[str, Any] = {
        name: pa.array(reference.features[:, j], type=pa.float64(), from_pandas=True)
        for j, name in enumerate(reference.schema.feature_names)
    }
    if reference.labels is not None:
        columns[reference.schema.label] = pa.array(reference.labels, type=pa.int64())
    pq.write_table(pa.table(columns), directory / REFERENCE_FILE)
    document = {**reference.schema.to_dict(), "encoding": {}}
    (directory / SCHEMA_FILE).write_text(json.dumps(document), encoding="utf-8")
    return directory


def request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one HTTP exchange; HTTP errors are answers too."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    call = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@contextmanager
def served(
    arguments: list[str], port: int, ready_path: str, *, timeout: float = 90.0, log: Path
) -> Iterator[ManagedProcess]:
    """Start ``python ARGUMENTS`` in the repository root, wait until ``GET ready_path`` answers
    200, and always stop it (SIGTERM, then SIGKILL) when the block ends."""
    process = ManagedProcess(
        [sys.executable, *arguments],
        name=" ".join(arguments[:2]),
        ready_url=f"http://127.0.0.1:{port}{ready_path}",
        log=log,
        in_repository=True,
        start_timeout_s=timeout,
        stop_timeout_s=15.0,
    )
    with process:
        yield process


#: The alert receiver of the library, under the name the tests use.
Receiver = AlertReceiver
