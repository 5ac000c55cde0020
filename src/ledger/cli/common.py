"""What the command groups share: the consoles, the --db option, one-line
failures, the database URL, progress bars and the key, keyring and policy
files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.config import Settings
from ledger.store.database import DatabaseURL, DatabaseURLError

if TYPE_CHECKING:
    from ledger.store.codevault import Keyring
    from ledger.tlog.keys import Signer
    from ledger.tlog.policy import Policy

T = TypeVar("T")


console = Console()


errors = Console(stderr=True)


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL or SQLite path (default: $LEDGER_DATABASE_URL or ./ledger.db)."
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    """One line on stderr (never wrapped), then exit non-zero."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    return typer.Exit(code)


def _url(db: str | None) -> DatabaseURL:
    try:
        return DatabaseURL.parse(db if db is not None else Settings().database_url)
    except DatabaseURLError as error:
        raise _fail(str(error)) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def _load_signer(path: Path) -> Signer:
    from ledger.tlog.c2sp import NoteError
    from ledger.tlog.keys import Signer

    try:
        return Signer.from_private_text(path.read_text().strip())
    except FileNotFoundError:
        raise _fail(f"no key file at {path}") from None
    except (NoteError, ValueError) as error:
        raise _fail(f"{path}: {error}") from None


def _load_keyring(path: Path) -> Keyring:
    from ledger.store.codevault import Keyring, VaultError

    try:
        return Keyring.load(path)
    except VaultError as error:
        raise _fail(str(error)) from None


def _load_policy(path: Path) -> Policy:
    from ledger.tlog.policy import PolicyError, parse_policy

    try:
        return parse_policy(path.read_text())
    except FileNotFoundError:
        raise _fail(f"no policy file at {path}") from None
    except (PolicyError, OSError, UnicodeDecodeError) as error:
        raise _fail(f"{path}: {error}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
