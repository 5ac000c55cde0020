"""The ``ledger`` command line: the command tree, in ``--help`` order.

Each command lives in the module of its group (``verify``, ``serve``,
``keys``, ...); what they share is in ``common``. The modules import their
work lazily, inside the commands, so that ``ledger --help`` stays fast.
"""

from __future__ import annotations

import typer

from ledger.cli import (
    apikeys,
    channels,
    codes,
    codes_import,
    demo,
    export,
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
)
app.command()(demo.demo)
app.command()(verify.verify)
app.command()(export.export)

keys_app = typer.Typer(
    help="Ed25519 keys for the log and for verifier nodes (C2SP signed-note).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
keys_app.command("generate")(keys.keys_generate)
keys_app.command("show")(keys.keys_show)

app.command()(serve.serve)

verifier_app = typer.Typer(help="Independent verifier nodes.", no_args_is_help=True)
app.add_typer(verifier_app, name="verifier")
verifier_app.command("run")(verifier.verifier_run)

proof_app = typer.Typer(
    help="Provenance proofs a platform can check offline.", no_args_is_help=True
)
app.add_typer(proof_app, name="proof")
proof_app.command("export")(proof.proof_export)
proof_app.command("verify")(proof.proof_verify)

api_keys_app = typer.Typer(
    help="API keys for the HTTP API: issue, list, revoke.", no_args_is_help=True
)
app.add_typer(api_keys_app, name="api-keys")
api_keys_app.command("issue")(apikeys.api_keys_issue)
api_keys_app.command("list")(apikeys.api_keys_list)
api_keys_app.command("revoke")(apikeys.api_keys_revoke)

channels_app = typer.Typer(
    help="Channels (shops, livestream rooms, partner sites): add, list.", no_args_is_help=True
)
app.add_typer(channels_app, name="channels")
channels_app.command("add")(channels.channels_add)
channels_app.command("list")(channels.channels_list)

views_app = typer.Typer(help="The read views: status and rebuild.", no_args_is_help=True)
app.add_typer(views_app, name="views")
views_app.command("status")(views.views_status)
views_app.command("rebuild")(views.views_rebuild)

codes_app = typer.Typer(
    help="Redemption codes: the keyring, key rotation, imports, counts.", no_args_is_help=True
)
app.add_typer(codes_app, name="codes")
codes_app.command("keyring")(codes.codes_keyring)
codes_app.command("rotate")(codes.codes_rotate)
codes_app.command("import")(codes_import.codes_import)
codes_app.command("status")(codes.codes_status)


def main() -> None:
    app()


__all__ = ["app", "main"]
