"""Drift alerts: a CloudEvent or a plain webhook POST, sent off the request path.

``cloudevent`` sends an HTTP binary-mode CloudEvent (``ce-type: ai.getit.ml.drift.detected``),
which a Knative trigger or Argo Events sensor can turn into a training-pipeline run; ``webhook``
POSTs the same JSON document with ``Content-Type: application/json`` (Alertmanager-style
receivers, Slack relays). Alerts go through a bounded queue to one sender thread: a slow or dead
receiver never blocks event ingestion, a full queue drops (and counts) the alert, and a failed
delivery is logged and counted, never raised.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

AlertFormat = Literal["cloudevent", "webhook"]
ALERT_TYPE: Final = "ai.getit.ml.drift.detected"
DEFAULT_SOURCE: Final = "getit-ml/drift-detector"


@dataclass(frozen=True)
class AlertConfig:
    url: str | None = None
    format: AlertFormat = "cloudevent"
    source: str = DEFAULT_SOURCE
    timeout_s: float = 5.0
    #: After an alert for a model, further drifted windows alert again only after this long.
    cooldown_s: float = 300.0
    queue_size: int = 100

    def __post_init__(self) -> None:
        if self.format not in ("cloudevent", "webhook"):
            raise UserError(f"unknown alert format {self.format!r}: cloudevent or webhook")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise UserError(f"alert URL {self.url!r} must start with http:// or https://")
        if self.timeout_s <= 0 or self.cooldown_s < 0 or self.queue_size < 1:
            raise UserError("alert timeout must be positive, cooldown >= 0, queue size >= 1")


def alert_request(config: AlertConfig, alert: dict[str, Any]) -> urllib.request.Request:
    """The HTTP request that delivers ``alert`` in the configured format."""
    if config.url is None:
        raise ValueError("no alert URL configured")
    body = json.dumps(alert, default=str).encode()
    headers = {"Content-Type": "application/json"}
    if config.format == "cloudevent":
        headers.update(
            {
                "ce-specversion": "1.0",
                "ce-type": ALERT_TYPE,
                "ce-source": config.source,
                "ce-id": str(uuid.uuid4()),
                "ce-time": datetime.now(UTC).isoformat(),
                "ce-subject": str(alert.get("model", "")),
            }
        )
    return urllib.request.Request(config.url, data=body, headers=headers, method="POST")


class AlertSender:
    """Delivers alerts from a background thread; ``on_outcome(outcome)`` counts each one
    (``sent``, ``failed``, ``dropped``)."""

    def __init__(
        self, config: AlertConfig, on_outcome: Callable[[str], None] | None = None
    ) -> None:
        self.config = config
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(config.queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent: list[dict[str, Any]] = []  # the last few delivered alerts, for the status
        self.failures = 0

    def submit(self, alert: dict[str, Any]) -> bool:
        if self.config.url is None:
            return False
        self._ensure_thread()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            logger.warning("alert queue full: dropped the alert for %s", alert.get("model"))
            self._on_outcome("dropped")
            return False
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="drift-alerts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is None:
                    return
                self._deliver(alert)
            finally:
                self._queue.task_done()

    def _deliver(self, alert: dict[str, Any]) -> None:
        request = alert_request(self.config, alert)
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                status = response.status
        except (urllib.error.URLError, OSError, ValueError) as error:
            self.failures += 1
            logger.warning("drift alert to %s failed: %s", self.config.url, error)
            self._on_outcome("failed")
            return
        logger.info(
            "drift alert for %s sent to %s (%s)", alert.get("model"), self.config.url, status
        )
        self.sent = [*self.sent[-9:], alert]
        self._on_outcome("sent")

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until queued alerts are delivered (or ``timeout_s`` passes)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout_s)

    def close(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(self.config.timeout_s + 1)


class AlertReceiver:
    """A local HTTP endpoint that records what is POSTed to it: the receiving end of a webhook
    or CloudEvent alert, for the demo and the tests (``with AlertReceiver() as receiver``)."""

    def __init__(self) -> None:
        import http.server

        self.received: list[tuple[dict[str, str], Any]] = []
        self.event = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    body = raw.decode("utf-8", errors="replace")
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.event.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AlertReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[tuple[dict[str, str], Any]]:
        """What has been received once ``count`` posts arrived, or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)
