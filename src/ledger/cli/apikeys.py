"""``ledger api-keys``: issue, list, revoke."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.cli.common import (
    DbOption,
    T,
    _fail,
    _store_url,
    _url,
    console,
    errors,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ledger.store.apikeys import ApiKeyStore


RoleOption = Annotated[
    str, typer.Option("--role", help="admin, creator, channel, auditor or verifier.")
]


def api_keys_issue(
    role: RoleOption,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            help="The creator or channel id the key acts for (creator and channel keys only).",
        ),
    ] = None,
    label: Annotated[str, typer.Option("--label", help="A note for whoever reads the list.")] = "",
    db: DbOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {key_id, token, role, subject} as JSON.")
    ] = False,
) -> None:
    """Issue a key. The token is printed once; only its hash is stored."""
    from ledger.store.apikeys import check_grant

    try:
        check_grant(role, subject, label)  # refused before the store is touched
    except ValueError as error:
        raise _fail(str(error)) from None
    who, token = _with_keys(
        db, lambda keys: keys.issue(role, subject, label), create=True, record=True
    )
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "key_id": who.key_id,
                    "token": token,
                    "role": who.role.value,
                    "subject": who.subject,
                }
            )
            + "\n"
        )
    else:
        sys.stdout.write(token + "\n")
    errors.print(
        f"issued {who.role.value} key {who.key_id}"
        f"{f' for {who.subject}' if who.subject else ''}; the token is shown only "
        "this once",
        highlight=False,
    )


def api_keys_list(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Every key issued: id, role, subject, label, when issued and revoked (never secrets)."""
    from rich.table import Table

    rows = _with_keys(db, lambda keys: keys.list())
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("key id", "role", "subject", "label", "issued", "revoked")
    for row in rows:
        table.add_row(
            row["key_id"],
            row["role"],
            row["subject"] or "",
            row["label"],
            row["created_at"],
            row["revoked_at"] or "",
        )
    console.print(table)


def api_keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the 12 hex digits after lk_).")],
    db: DbOption = None,
) -> None:
    """Revoke a key: refused at once by this process's servers' next lookup (within
    5 s on servers that cached it)."""
    if not _with_keys(db, lambda keys: keys.revoke(key_id), record=True):
        raise _fail(f"no live API key {key_id!r} (unknown or already revoked)")
    console.print(f"revoked {key_id}")


def _with_keys(
    db: str | None,
    work: Callable[[ApiKeyStore], T],
    *,
    create: bool = False,
    record: bool = False,
) -> T:
    """Run ``work`` on the key table at ``db``; any store failure is one line.

    Without ``create``, a SQLite file that is not there is refused rather than
    made. With it, the store and its key table are created if need be. With
    ``record``, keys' issue and revocation are also recorded as events, by
    the operator (see :mod:`ledger.store.apikeys`).
    """
    from ledger.domain.actor import Actor, acting
    from ledger.domain.errors import LedgerError
    from ledger.service import Ledger
    from ledger.store.apikeys import ApiKeyStore, open_api_keys

    url = _url(db) if create else _store_url(db)
    try:
        if record:
            with Ledger(url) as ledger, acting(Actor.operator()):
                return work(ApiKeyStore(ledger.event_store.recorder, events=ledger))
        with open_api_keys(url, create=create) as keys:
            return work(keys)
    except LedgerError as refused:
        raise _fail(refused.message) from None
    except Exception as error:  # no key table, no server, a file we cannot write...
        if isinstance(error, typer.Exit):
            raise
        text = str(error).strip()
        raise _fail(
            f"cannot {'write' if create else 'read'} API keys at {url.display()}: "
            f"{text.splitlines()[0] if text else type(error).__name__}"
        ) from None
