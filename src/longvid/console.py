"""The command line's shared error exit: every ``longvid`` command reports the project's own
errors (`longvid.errors.LongvidError`) the same way, one red line on stderr and exit code 2."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

err = Console(stderr=True)
"""stderr, for errors and warnings (stdout stays the command's output)."""


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` as one error line on stderr and leave with exit code 2."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)
