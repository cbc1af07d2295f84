"""Errors that mean "the user asked for something wrong", as opposed to a bug.

The command line shows a :class:`UserError` as one readable line and exits with status 2, without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input, configuration or environment, with a message that says
    what is wrong and how to put it right."""


class SettingsError(UserError):
    """The ``GETIT_ML_*`` environment variables (or values passed in) do not validate."""
