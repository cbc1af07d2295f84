"""What every command shares: its settings, and how a user's mistake is shown (one line, exit 2)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from getit_ml.errors import UserError
from getit_ml.settings import PlatformSettings, load_settings

P = ParamSpec("P")
R = TypeVar("R")

stderr = Console(stderr=True)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Show a UserError as a message, not a traceback, and exit with status 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except UserError as error:
            stderr.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


def settings_of(ctx: typer.Context) -> PlatformSettings:
    """The settings the root callback loaded (or fresh ones for a command run on its own)."""
    settings = ctx.find_root().obj
    return settings if isinstance(settings, PlatformSettings) else load_settings()
