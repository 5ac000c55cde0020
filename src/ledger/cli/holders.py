"""``ledger holders``: a holder's key, and the authorization that takes a
unit to another channel (``docs/format.md`` section 10) -- what a wallet
does, for holders, channels' tests and the documentation.

The key file holds the Ed25519 private key as PKCS#8 PEM (mode 0600); its
public key, printed by ``keygen``, is what a channel registers for the
account (``POST /accounts/{account}/keys``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.cli.common import _fail

KeyFile = Annotated[Path, typer.Option("--key", help="The holder's private key file (keygen).")]


def holders_keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the private key (0600).")],
) -> None:
    """Make a holder's Ed25519 key; print its public key (base64url), which a
    channel serving the holder registers for the account."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _fail(f"{out} exists: a key is never overwritten") from None
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    typer.echo(_public(key))


def holders_authorize(
    key: KeyFile,
    account: Annotated[str, typer.Option("--account", help="The holder's account.")],
    unit: Annotated[str, typer.Option("--unit", help="The unit's id.")],
    to_channel: Annotated[str, typer.Option("--to", help="The channel to take it to.")],
    nonce: Annotated[
        int,
        typer.Option(
            "--nonce", min=1, help="The unit's version now (`events` of GET /units/{id})."
        ),
    ],
    log: Annotated[
        str, typer.Option("--log", help="The log's origin (first line of /log/checkpoint).")
    ],
    expires_in: Annotated[
        int,
        typer.Option("--expires-in", min=1, max=7 * 86_400, help="Seconds it stays good."),
    ] = 600,
) -> None:
    """Sign an authorization taking a unit to another channel; print it as
    JSON, for the new channel to present (POST /units/{id}/moves)."""
    from ledger.domain.consent import b64url, key_id_of, pae, payload_bytes, unb64url

    private = _load(key)
    body = payload_bytes(
        account=account,
        unit_id=unit,
        to_channel=to_channel,
        log=log,
        nonce=nonce,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
    )
    authorization = {
        "key_id": key_id_of(unb64url(_public(private), field="public_key")),
        "payload": b64url(body),
        "signature": b64url(private.sign(pae(body))),
    }
    typer.echo(json.dumps(authorization, separators=(",", ":")))


def _load(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise _fail(f"cannot read {path}: {error.strerror}") from None
    except (ValueError, TypeError):
        raise _fail(
            f"{path} is not a private key file (make one with ledger holders keygen)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise _fail(f"{path} holds no Ed25519 key")
    return key


def _public(key: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from ledger.domain.consent import b64url

    return b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
