"""What the command groups share: the consoles, the --db option, one-line
failures, the database URL, progress bars and the key, keyring and policy
files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ledger.config import Settings
from ledger.store.database import DatabaseURL, DatabaseURLError

if TYPE_CHECKING:
    from ledger.store.codevault import Keyring
    from ledger.tlog.keys import Signer
    from ledger.tlog.keys import Verifier as NoteVerifier
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


def _url(db: str | None, *, reachable: bool = True) -> DatabaseURL:
    """The store's URL from --db or the settings. With ``reachable`` (every
    command but ``serve``, which waits for a database that is down), a
    PostgreSQL database that does not take a connection within the
    database timeout is one line naming the cause, and exit 2."""
    url = _parsed(db)
    if reachable and url.backend == "postgresql":
        _check_reachable(url, lasting_only=False)
    return url


def _store_url(db: str | None) -> DatabaseURL:
    """As :func:`_url`, for a command that reads a store: there must be one
    (a SQLite file; a PostgreSQL schema with the events table -- asked on the
    same connection), so that a mistyped URL is an error and never a new,
    empty store."""
    url = _parsed(db)
    if url.backend == "postgresql":
        _check_reachable(url, lasting_only=False, store=True)
    elif not url.exists():
        raise _fail(f"no ledger database at {url.display()}")
    return url


def _parsed(db: str | None) -> DatabaseURL:
    try:
        return DatabaseURL.parse(db if db is not None else Settings().database_url)
    except DatabaseURLError as error:
        raise _fail(str(error)) from None


def _check_reachable(url: DatabaseURL, *, lasting_only: bool, store: bool = False) -> None:
    """Fail in one line if the database cannot be used (``lasting_only``: only
    if waiting cannot help, e.g. no such database or role)."""
    from ledger.store.postgres import NO_STORE, connect_problem

    problem = connect_problem(url, Settings().database_timeout, store=store)
    if problem is None or (lasting_only and not problem.lasting):
        return
    if problem.cause == NO_STORE:
        raise _fail(f"no ledger database at {url.display()}")
    raise _fail(f"cannot use the database at {url.display()}: {problem.cause}")


def _progress() -> Progress:
    """A bar on stderr: the phase, done of total, time taken and time left
    (rich estimates it from the recent rate once the total is known)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    )


def _load_signer(path: Path, *, cosigner: bool | None) -> Signer:
    """A private key file: the log's key (type 0x01), or with ``cosigner`` a
    verifier node's cosigning key (type 0x04), the other kind refused (a log
    never signs as a witness, nor a node as the log); None takes either."""
    from ledger.tlog.c2sp import KEY_TYPE_COSIGNATURE_V1, KEY_TYPE_ED25519, NoteError
    from ledger.tlog.keys import Signer

    try:
        signer = Signer.from_private_text(path.read_text().strip())
    except FileNotFoundError:
        raise _fail(f"no key file at {path}") from None
    except (NoteError, ValueError, OSError, UnicodeDecodeError) as error:
        raise _fail(f"{path}: {error}") from None
    if cosigner is True and signer.key_type != KEY_TYPE_COSIGNATURE_V1:
        raise _fail(
            f"{path} is a log key (type 0x01), not a cosigning key: a verifier node "
            "cosigns with its own (ledger keys generate --cosigner --name NAME --out FILE)"
        )
    if cosigner is False and signer.key_type != KEY_TYPE_ED25519:
        raise _fail(
            f"{path} is a verifier's cosigning key (type 0x04), not a log key: the log "
            "signs checkpoints with its own (ledger keys generate --name ORIGIN --out FILE)"
        )
    return signer


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


def _event_count(url: DatabaseURL) -> int | None:
    """About how many events the store holds (its last position: a total
    for a progress bar, never a figure to report); None if unknown."""
    from ledger.store.records import RecordReader

    try:
        with RecordReader(url) as reader:
            return reader.max_position() or None
    except Exception:  # only a progress bar's total: the command reports the real error
        return None


def _load_vkey(given: str, option: str = "--log-key") -> NoteVerifier:
    """A verifier key given as its text or as a file holding it; else one line."""
    from ledger.tlog.c2sp import NoteError
    from ledger.tlog.keys import Verifier

    path = Path(given)
    try:
        text = path.read_text().strip() if path.is_file() else given
        return Verifier.from_vkey(text)
    except (NoteError, ValueError, OSError) as error:  # ValueError: also a file not UTF-8
        if not path.is_file():
            what = f"{option} {given!r}: no such file, and not a verifier key"
            raise _fail(f"{what} ({error})") from None
        raise _fail(f"{option} {given!r}: {error}") from None
