"""The ``ledger`` command line: the command tree, in ``--help`` order.

Each command lives in the module of its group (``verify``, ``serve``,
``keys``, ...); what they share is in ``common``. The modules import their
work lazily, inside the commands, so that ``ledger --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from ledger.cli import (
    apikeys,
    audit,
    channels,
    codes,
    codes_import,
    demo,
    export,
    holders,
    keys,
    proof,
    serve,
    verifier,
    verify,
    views,
)

app = typer.Typer(
    help="A verifiable, event-sourced ledger of digital goods.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command(short_help="A flash sale and resales on a fresh SQLite file, verified.")(demo.demo)
app.command(short_help="Verify a store, an export or a bundle (exit codes in --help).")(
    verify.verify
)
app.command(short_help="Write the events as JSON Lines, or an audit bundle.")(export.export)
app.command(short_help="Who did what: the audit trail, from a store's views.")(audit.audit)

keys_app = typer.Typer(
    help="Ed25519 keys for the log and for verifier nodes (C2SP signed-note).",
    short_help="Ed25519 keys for the log and for verifier nodes.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
keys_app.command("generate", short_help="Create a private key file and print its verifier key.")(
    keys.keys_generate
)
keys_app.command("show")(keys.keys_show)

app.command(short_help="Run the HTTP API, the live views and the log's sealer.")(serve.serve)

verifier_app = typer.Typer(help="Independent verifier nodes.", no_args_is_help=True)
app.add_typer(verifier_app, name="verifier")
verifier_app.command("run")(verifier.verifier_run)

proof_app = typer.Typer(
    help="Provenance proofs a platform can check offline.", no_args_is_help=True
)
app.add_typer(proof_app, name="proof")
proof_app.command("export")(proof.proof_export)
proof_app.command("verify", short_help="Check a provenance bundle offline against a policy.")(
    proof.proof_verify
)

api_keys_app = typer.Typer(
    help="API keys for the HTTP API: issue, list, revoke.", no_args_is_help=True
)
app.add_typer(api_keys_app, name="api-keys")
api_keys_app.command("issue")(apikeys.api_keys_issue)
api_keys_app.command("list", short_help="Every key issued, revoked or not.")(apikeys.api_keys_list)
api_keys_app.command("revoke", short_help="Revoke a key (servers refuse it within 5 s).")(
    apikeys.api_keys_revoke
)

channels_app = typer.Typer(
    help="Channels (shops, livestream rooms, partner sites): add, list.", no_args_is_help=True
)
app.add_typer(channels_app, name="channels")
channels_app.command("add")(channels.channels_add)
channels_app.command("list")(channels.channels_list)

holders_app = typer.Typer(
    help="A holder's key, and the signed authorization taking a unit to another channel.",
    no_args_is_help=True,
)
app.add_typer(holders_app, name="holders")
holders_app.command("keygen", short_help="Make a holder's key; print its public key.")(
    holders.holders_keygen
)
holders_app.command("authorize", short_help="Sign the move of a unit to another channel.")(
    holders.holders_authorize
)

views_app = typer.Typer(help="The read views: status and rebuild.", no_args_is_help=True)
app.add_typer(views_app, name="views")
views_app.command("status")(views.views_status)
views_app.command("rebuild", short_help="Drop the views and rebuild them from the events.")(
    views.views_rebuild
)

codes_app = typer.Typer(
    help="Redemption codes: the keyring, key rotation, imports, counts.", no_args_is_help=True
)
app.add_typer(codes_app, name="codes")
codes_app.command("keyring")(codes.codes_keyring)
codes_app.command("rotate", short_help="Re-seal every code under a new active key.")(
    codes.codes_rotate
)
codes_app.command("import")(codes_import.codes_import)
codes_app.command("status", short_help="A tier's codes: imported, available, lent, bound.")(
    codes.codes_status
)


def main() -> None:
    """The ``ledger`` command. Whatever goes wrong ends in one line on stderr
    and a non-zero exit, never a traceback: a database that went away
    mid-command exits 2 naming the cause; anything unforeseen exits 1 as an
    internal error (``LEDGER_TRACEBACK=1`` shows the traceback, for a bug
    report)."""
    try:
        app()
    except Exception as error:
        if os.environ.get("LEDGER_TRACEBACK") == "1":
            raise
        raise SystemExit(_one_line(error)) from None


def _one_line(error: Exception) -> int:
    from ledger.store.availability import unavailable_reason

    reason = unavailable_reason(error)
    if reason is not None:
        sys.stderr.write(f"error: the database is unavailable: {' '.join(reason.split())}\n")
        return 2
    text = " ".join(str(error).split()) or "no message"
    sys.stderr.write(
        f"error: internal error ({type(error).__name__}: {text}); nothing more is known "
        "here -- rerun with LEDGER_TRACEBACK=1 for the traceback and report it\n"
    )
    return 1


__all__ = ["app", "main"]
