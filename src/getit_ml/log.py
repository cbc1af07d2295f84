"""Logging set-up for command-line entry points (library modules only call ``getLogger``)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "getit_ml"


def configure_logging(level: str) -> None:
    """Send getit_ml's log records to the current stderr at ``level``; idempotent.

    Calling it again replaces our handler with one on today's ``sys.stderr`` (test runners and
    notebooks swap it, and may have closed the old one) instead of adding a second handler.
    """
    root = logging.getLogger("getit_ml")
    root.setLevel(level)
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
