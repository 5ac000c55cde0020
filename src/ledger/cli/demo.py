"""``ledger demo``: a flash sale on a fresh store, verified."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ledger.cli.common import (
    _fail,
    _url,
    console,
)


def demo(
    db: Annotated[
        str, typer.Option("--db", help="SQLite file or URL for the demo store.")
    ] = "sqlite:///ledger-demo.db",
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete an existing demo SQLite file first.")
    ] = False,
    attempts: Annotated[
        int, typer.Option(help="Purchase attempts in the flash sale.", min=1, max=1_000_000)
    ] = 15_342,
    threads: Annotated[int, typer.Option(help="Concurrent buyers.", min=1, max=512)] = 64,
    resales: Annotated[int, typer.Option(help="Resales after the sale.", min=0, max=100_000)] = 300,
) -> None:
    """Mint a good, run a flash sale and resales, then verify every chain."""
    from ledger.demo import DemoError, run_demo

    url = _url(db, reachable=False)  # run_demo takes only a fresh SQLite file
    try:
        # Wide enough for the sale table: a narrow terminal wraps, never truncates.
        wide = Console(width=max(console.width, 110))
        code = run_demo(
            url, replace=replace, attempts=attempts, threads=threads, resales=resales, console=wide
        )
    except DemoError as error:
        raise _fail(str(error)) from None
    raise typer.Exit(code)
