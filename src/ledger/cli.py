"""The ``ledger`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.config import Settings
from ledger.store.database import DatabaseURL, DatabaseURLError
from ledger.store.records import StoreMissingError
from ledger.tuning import tune_gc

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Callable

    from ledger.projections.replay import ReplayReport
    from ledger.store.apikeys import ApiKeyStore
    from ledger.store.codevault import Keyring
    from ledger.tlog.note import Signer
    from ledger.tlog.policy import Policy

app = typer.Typer(
    help="A verifiable, event-sourced ledger of digital goods.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL or SQLite path (default: $LEDGER_DATABASE_URL "
                 "or ./ledger.db)."),
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
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), console=errors, transient=True,
    )


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="SQLite file or URL for the demo store.")]
    = "sqlite:///ledger-demo.db",
    replace: Annotated[bool, typer.Option("--replace", help="Delete an existing demo "
                                          "SQLite file first.")] = False,
    attempts: Annotated[int, typer.Option(help="Purchase attempts in the flash sale.",
                                          min=1, max=1_000_000)] = 15_342,
    threads: Annotated[int, typer.Option(help="Concurrent buyers.", min=1, max=512)] = 64,
    resales: Annotated[int, typer.Option(help="Resales after the sale.", min=0,
                                         max=100_000)] = 300,
) -> None:
    """Mint a good, run a flash sale and resales, then verify every chain."""
    from ledger.demo import DemoError, run_demo

    url = _url(db)
    try:
        # Wide enough for the sale table: a narrow terminal wraps, never truncates.
        wide = Console(width=max(console.width, 110))
        code = run_demo(url, replace=replace, attempts=attempts, threads=threads,
                        resales=resales, console=wide)
    except DemoError as error:
        raise _fail(str(error)) from None
    raise typer.Exit(code)


@app.command()
def verify(
    db: DbOption = None,
    export: Annotated[Path | None, typer.Option("--export", help="Verify an exported "
                                                "JSON Lines file instead of a database.")]
    = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Verify an audit bundle "
                                                "directory (ledger export --bundle) offline.")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as "
                                                  "JSON to this file ('-' for stdout).")]
    = None,
    log_key: Annotated[list[str] | None, typer.Option(
        "--log-key", help="A trusted log verifier key (vkey text, or a file holding one); "
        "checkpoints must carry its signature. Repeatable.")] = None,
    policy: Annotated[Path | None, typer.Option(
        "--policy", help="C2SP tlog-policy file: trusted log keys, verifiers and the quorum "
        "the latest checkpoint's cosignatures must meet.")] = None,
    state: Annotated[Path | None, typer.Option(
        "--state", help="Remember the verified checkpoint here; next time, a log that no "
        "longer contains it (rolled back or rewritten) fails.")] = None,
    views: Annotated[bool, typer.Option(
        "--views/--no-views", help="Given a database, also check that its read views "
        "equal a fresh replay of its events.")] = True,
    max_unsigned_age: Annotated[str | None, typer.Option(
        "--max-unsigned-age", metavar="SECONDS", help="With --log-key or --policy: how many "
        "seconds older than the newest event an event may be and still be outside every "
        "checkpoint (default: $LEDGER_VERIFY_MAX_UNSIGNED_AGE or 300).")] = None,
) -> None:
    """Check every event's encoding and hash chain, every rule the events
    alone can prove, and every signed checkpoint of the log against the
    events; given a database, also that the views equal a fresh replay.
    Exit codes: 0 all hold; 2 could not run; 3 chain or encoding; 4 domain
    rule; 5 checkpoint signature; 6 quorum; 7 consistency, split view or
    rollback; 9 views differ from the replay; 10 given a key or a policy,
    no checkpoint, or events left unsigned too long; 11 the stored tree the
    server proves from differs from the events."""
    from ledger.tlog.note import NoteError, Verifier
    from ledger.verify import BundleError, verify_bundle, verify_export, verify_store
    from ledger.verify.classes import exit_code

    tune_gc()

    bound = _unsigned_age(max_unsigned_age)
    keys = []
    for given in log_key or []:
        try:
            text = Path(given).read_text().strip() if Path(given).is_file() else given
            keys.append(Verifier.from_vkey(text))
        except (NoteError, ValueError, OSError) as error:  # ValueError: also a file not UTF-8
            raise _fail(f"--log-key {given!r}: {error}") from None

    with _progress() as progress:
        task = progress.add_task("verifying", total=None)

        def advance(done: int) -> None:
            progress.update(task, completed=done)

        try:
            if bundle is not None:
                if not (bundle / "entries.jsonl").is_file():
                    raise _fail(f"no audit bundle at {bundle} (no entries.jsonl)")
                try:
                    report = verify_bundle(
                        bundle, advance, log_keys=keys,
                        policy=_load_policy(policy) if policy else None,
                        remembered=_read_state(state) if state else None,
                        max_unsigned_age=bound)
                except BundleError as error:
                    raise _fail(str(error)) from None
            elif export is not None:
                if not export.is_file():
                    raise _fail(f"no export file at {export}")
                report = verify_export(export, advance, log_keys=keys,
                                       policy=_load_policy(policy) if policy else None)
            else:
                report = verify_store(
                    _url(db), advance, log_keys=keys,
                    policy=_load_policy(policy) if policy else None,
                    remembered=_read_state(state) if state else None,
                    max_unsigned_age=bound)
        except StoreMissingError as error:
            raise _fail(str(error)) from None
        replay = None
        views_skipped = None
        if views and bundle is None and export is None:
            if report.ok:
                progress.update(task, description="replaying the views", completed=0)
                replay = _check_views(_url(db), advance)
            else:
                # A replay of events that do not verify proves nothing (and
                # the projector trusts what the verifier checks).
                views_skipped = "the events did not verify"
    _print_report(report)
    if replay is not None:
        _print_replay(replay)
    elif views_skipped is not None:
        console.print(f"views       not checked — {views_skipped}", highlight=False)
    if json_out is not None:
        views_json = (replay.to_json() if replay is not None else
                      {"checked": False, "reason": views_skipped} if views_skipped else None)
        text = json.dumps(report.to_json() | ({"views": views_json} if views_json else {}),
                          indent=2)
        if str(json_out) == "-":
            sys.stdout.write(text + "\n")
        else:
            json_out.write_text(text + "\n")
    if report.ok and state is not None and report.log and report.log["latest_size"]:
        _write_state(state, report.log["latest_size"], report.log["latest_root"])
    if not report.ok:
        raise typer.Exit(exit_code(f.check for f in report.findings))
    raise typer.Exit(VIEWS_DIFFER_EXIT if replay is not None and not replay.ok else 0)


VIEWS_DIFFER_EXIT = 9


def _unsigned_age(given: str | None) -> float:
    """--max-unsigned-age, or the setting: seconds, 0 or more."""
    if given is None:
        from pydantic import ValidationError

        try:
            return Settings().verify_max_unsigned_age
        except ValidationError as error:
            raise _fail(f"LEDGER_VERIFY_MAX_UNSIGNED_AGE: "
                        f"{error.errors()[0]['msg']}") from None
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 10**9:  # (also refuses nan)
        raise _fail(f"--max-unsigned-age {given}: must be a number of seconds, 0 or more")
    return seconds


def _check_views(url: DatabaseURL, advance: Callable[[int], None]) -> ReplayReport | None:
    """Replay the views beside the store and compare; None if it has none.
    Whatever the views hold, a report: what cannot be read is a problem
    located in it, never an exception."""
    from ledger.projections import ProjectionStore
    from ledger.projections.replay import ReplayReport, compare_with_replay, views_present
    from ledger.projections.tables import VIEWS_VERSION
    from ledger.store.records import RecordReader

    try:
        with RecordReader(url) as reader:
            views = ProjectionStore(reader.recorder, bands=Settings().band_policy(),
                                    create=False)
            if not views_present(views):
                return None
            try:
                version = views.version()
            except (ValueError, TypeError, OverflowError) as error:
                return ReplayReport(problems=[
                    f"meta [id=1]: the views' layout version cannot be read "
                    f"({type(error).__name__}: {error})"])
            if version != VIEWS_VERSION:
                errors.print(f"views: laid out by another version ({version}, this is "
                             f"{VIEWS_VERSION}); not checked -- a server rebuilds them on start, "
                             "or run `ledger views rebuild`", highlight=False, markup=False)
                return None
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                advance(done)

            return compare_with_replay(views, progress=step)
    except Exception as error:  # the database itself failed under the views
        return ReplayReport(problems=[
            f"the views cannot be read ({type(error).__name__}: {error})"])


def _print_replay(replay: ReplayReport) -> None:
    rows = sum(replay.rows.values())
    if replay.ok:
        console.print(f"views       OK — {rows:,} rows in {len(replay.rows)} views equal a fresh "
                      f"replay of {replay.events:,} events (position {replay.position:,})")
        return
    if replay.mismatched_rows:
        console.print(f"views       [bold red]DIFFER[/] — {replay.mismatched_rows:,} of {rows:,} "
                      "rows differ from a fresh replay")
    else:
        console.print("views       [bold red]DIFFER[/] — they cannot all be compared with a "
                      "fresh replay")
    for line in [*replay.problems[:5], *replay.differences[:5]][:5]:
        console.print(f"            {line}", highlight=False, markup=False)


def _read_state(path: Path) -> tuple[int, str] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return int(data["size"]), str(data["root"])
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise _fail(f"{path} is not a verify state file") from None


def _write_state(path: Path, size: int, root: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps({"size": size, "root": root}) + "\n")
    temp.replace(path)


def _print_report(report: object) -> None:
    from ledger.verify import Report

    assert isinstance(report, Report)

    def plain(line: str) -> None:
        # What the store holds is printed as text, never read as markup: an
        # event type such as "[/x]" is data.
        console.print(line, highlight=False, markup=False)

    rate = report.events / report.elapsed_s if report.elapsed_s > 0 else 0.0
    plain(f"source      {report.source}")
    plain(f"events      {report.events:,} in {report.aggregates:,} aggregates "
          f"({report.elapsed_s:.2f} s, {rate:,.0f} events/s)")
    if report.log is not None:
        log = report.log
        signed = ", ".join(log["signers"]) if log["keys_given"] else "not checked (no --log-key)"
        plain(f"log         {log['verified']}/{log['checkpoints']} checkpoints match the "
              f"events; latest size {log['latest_size']:,} root {log['latest_root']}")
        plain(f"            signed by: {signed}; {log['unsealed_events']:,} events "
              "not yet under a checkpoint")
        if log["quorum"]:
            plain(f"            cosigned by: {', '.join(log['cosigners']) or 'no one'};"
                  f" quorum {log['quorum']}")
    if report.ok:
        console.print("verdict     [bold green]OK[/] — every chain and rule holds")
        return
    first = report.first
    assert first is not None
    console.print(f"verdict     [bold red]FAILED[/] — {report.findings_total} finding(s)")
    if first.position is None and first.aggregate_id is None:
        plain("first bad   not at one event (the message says where)")
    else:
        plain(f"first bad   position {first.position}, aggregate {first.aggregate_id} "
              f"v{first.version} ({first.event_type})")
    plain(f"            [{first.check}] {first.message}")
    others = sorted((f for f in report.findings if f is not first),
                    key=lambda f: f.position if f.position is not None else 0)
    for finding in others[:4]:
        plain(f"also        position {finding.position} ({finding.event_type}) "
              f"[{finding.check}] {finding.message}")
    if report.findings_total > 5:
        console.print(f"            … {report.findings_total - 5} more in the --json report")


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="File (JSON Lines) or, with --bundle, "
                                      "directory to write.")],
    db: DbOption = None,
    bundle: Annotated[bool, typer.Option("--bundle", help="Write a self-contained audit "
                                         "bundle: entries, checkpoints with cosignatures, "
                                         "policy.")] = False,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file to include "
                                                "in the bundle.")] = None,
) -> None:
    """Write every event record, in commit order, to a JSON Lines file (or an
    audit bundle directory with --bundle)."""
    from ledger.verify import export_bundle, export_store

    url = _url(db)
    policy_text = None
    if policy is not None:
        _load_policy(policy)  # refuse a bad one before writing anything
        policy_text = policy.read_text()
    with _progress() as progress:
        task = progress.add_task("exporting", total=None)

        def advance(done: int) -> None:
            progress.update(task, completed=done)

        try:
            if bundle:
                count = export_bundle(url, out, policy_text, advance)
            else:
                count = export_store(url, out, advance)
        except StoreMissingError as error:
            raise _fail(str(error)) from None
        except OSError as error:
            raise _fail(f"cannot write {out}: {error.strerror}") from None
    console.print(f"wrote {count:,} events to {out}")


keys_app = typer.Typer(help="Ed25519 keys for the log and for verifier nodes (C2SP signed-note).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Option("--name", help="Key name: the log's origin (e.g. "
                                      "ledger.example/log) or the verifier's name.")],
    out: Annotated[Path, typer.Option("--out", help="Private key file to create.")],
    cosigner: Annotated[bool, typer.Option("--cosigner", help="A verifier's cosigning key "
                                           "(tlog-cosignature, type 0x04).")] = False,
) -> None:
    """Create a private key file (mode 0600) and print its public verifier key."""
    from ledger.tlog.note import NoteError, Signer

    if out.exists():
        raise _fail(f"{out} exists; keys are never overwritten")
    try:
        signer = Signer.generate(name, key_type=0x04 if cosigner else 0x01)
    except (NoteError, ValueError) as error:
        raise _fail(str(error)) from None
    try:
        out.touch(mode=0o600)
        out.write_text(signer.to_private_text() + "\n")
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror}") from None
    console.print(signer.verifier_key(), highlight=False, soft_wrap=True)


@keys_app.command("show")
def keys_show(key: Annotated[Path, typer.Argument(help="A private key file.")]) -> None:
    """Print the public verifier key of a private key file."""
    console.print(_load_signer(key).verifier_key(), highlight=False, soft_wrap=True)


def _load_signer(path: Path) -> Signer:
    from ledger.tlog.note import NoteError, Signer

    try:
        return Signer.from_private_text(path.read_text().strip())
    except FileNotFoundError:
        raise _fail(f"no key file at {path}") from None
    except (NoteError, ValueError) as error:
        raise _fail(f"{path}: {error}") from None


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65_535)] = 8000,
    log_key: Annotated[str | None, typer.Option("--log-key", help="Private key file(s) of "
                                                "the log, comma-separated (default: "
                                                "$LEDGER_LOG_KEY_FILE).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="C2SP tlog-policy file "
                                                "naming the verifiers whose cosignatures "
                                                "the ledger accepts.")] = None,
) -> None:
    """Run the HTTP API on the store: commands and reads (with API keys; make one
    with `ledger api-keys issue`), live views, and signed checkpoints of the log."""
    import dataclasses
    import logging

    import uvicorn
    from pydantic import ValidationError

    from ledger.api.app import create_app
    from ledger.api.limits import HeaderLimits
    from ledger.api.runtime import Runtime, RuntimeOpener, open_runtime
    from ledger.api.server import http_protocol

    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in error.errors())
        raise _fail(f"settings (LEDGER_*): {problems}") from None
    url = _url(db)
    key_files = log_key or settings.log_key_file
    if not key_files:
        raise _fail("the server signs checkpoints: give --log-key FILE "
                    "(make one with: ledger keys generate --name ORIGIN --out FILE)")
    signers = [_load_signer(Path(part.strip())) for part in key_files.split(",")]
    try:
        settings.band_policy()
    except ValueError as error:
        raise _fail(f"display band settings: {error}") from None
    code_keyring = _load_keyring(Path(settings.code_keyring_file)) \
        if settings.code_keyring_file else None
    trust = _load_policy(policy) if policy else None

    def opened() -> Runtime:
        return open_runtime(url, settings, signers=signers, policy=trust,
                            code_keyring=code_keyring)

    # The ledger's own messages (waiting for the database, outages) beside uvicorn's.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logging.getLogger("ledger").addHandler(handler)
    logging.getLogger("ledger").setLevel(logging.INFO)
    # During an outage the pool warns of each reconnection attempt (twenty a
    # second); ledger.store says it once, when the database goes and comes.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    header_limits = HeaderLimits(header_bytes_max=settings.header_bytes_max,
                                 headers_bytes_max=settings.headers_bytes_max,
                                 count_max=settings.headers_count_max)
    if url.backend == "sqlite":  # ready at once, or a clear refusal
        try:
            api = create_app(opened(), header_limits=header_limits)
        except Exception as error:
            raise _fail(f"cannot open {url.display()}: {error}") from None
    else:  # listen at once; serve when the database answers (RuntimeOpener)
        api = create_app(opener=lambda on_open: RuntimeOpener(
            dataclasses.replace(url, timeout=settings.database_timeout), opened, on_open),
            header_limits=header_limits)
    tune_gc()  # (ledger.tuning: the cyclic collector cost ~15 % of a flash sale)
    try:
        # (ledger.api.server: the request head bounded, refusals as problems)
        uvicorn.run(api, host=host, port=port, log_level="info",
                    http=http_protocol(settings.headers_bytes_max))
    finally:
        if api.state.runtime is not None:
            api.state.runtime.ledger.close()


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


verifier_app = typer.Typer(help="Independent verifier nodes.", no_args_is_help=True)
app.add_typer(verifier_app, name="verifier")


@verifier_app.command("run")
def verifier_run(
    ledger_url: Annotated[str, typer.Option("--ledger", help="The ledger's base URL.")],
    key: Annotated[Path, typer.Option("--key", help="This node's cosigning key "
                                      "(ledger keys generate --cosigner).")],
    log_key: Annotated[str, typer.Option("--log-key", help="The log's verifier key (vkey "
                                         "text or file); its name is the origin.")],
    state: Annotated[Path, typer.Option("--state", help="This node's state directory.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65_535)] = 8100,
    peer: Annotated[list[str] | None, typer.Option("--peer", help="Another verifier's base "
                                                   "URL, to compare checkpoints with.")]
    = None,
    poll: Annotated[float, typer.Option(help="Seconds between polls of the ledger.",
                                        min=0.05, max=60)] = 0.5,
) -> None:
    """Follow the ledger, re-verify every entry, cosign what checks out."""
    import logging

    import uvicorn

    from ledger.tlog.note import NoteError, Verifier
    from ledger.verifier_node.app import create_node_app
    from ledger.verifier_node.node import VerifierNode

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    text = Path(log_key).read_text().strip() if Path(log_key).is_file() else log_key
    try:
        log_verifier = Verifier.from_vkey(text)
    except (NoteError, ValueError) as error:
        raise _fail(f"--log-key: {error}") from None
    node = VerifierNode(ledger_url=ledger_url, signer=_load_signer(key),
                        log_keys=[log_verifier], origin=log_verifier.name, state_dir=state,
                        peers=peer or [])
    uvicorn.run(create_node_app(node, poll), host=host, port=port, log_level="warning")


proof_app = typer.Typer(help="Provenance proofs a platform can check offline.",
                        no_args_is_help=True)
app.add_typer(proof_app, name="proof")


@proof_app.command("export")
def proof_export(
    unit: Annotated[str, typer.Option("--unit", help="The unit's id.")],
    out: Annotated[Path, typer.Option("--out", help="Bundle file to write (JSON).")],
    db: DbOption = None,
) -> None:
    """Write a unit's provenance bundle: every event with its tlog-proof."""
    from uuid import UUID

    from ledger.domain.errors import LedgerError
    from ledger.service.proofs import ProofStoreError
    from ledger.service.provenance import NotYetSealedError, provenance_bundle
    from ledger.store.eventstore import EventStore
    from ledger.store.logstore import LogStore

    url = _url(db)
    if not url.exists():
        raise _fail(f"no ledger database at {url.display()}")
    try:
        unit_id = UUID(unit)
    except ValueError:
        raise _fail(f"--unit {unit!r} is not a UUID") from None
    store = EventStore(url)
    try:
        bundle = provenance_bundle(store, LogStore(store.recorder), unit_id)
    except (LedgerError, NotYetSealedError, ProofStoreError) as error:
        raise _fail(str(error)) from None
    finally:
        store.close()
    out.write_text(json.dumps(bundle, indent=2) + "\n")
    console.print(f"wrote {len(bundle['events'])} event proof(s) to {out}")


@proof_app.command("verify")
def proof_verify(
    bundle: Annotated[Path, typer.Argument(help="A provenance bundle file.")],
    policy: Annotated[Path, typer.Option("--policy", help="The tlog-policy to trust.")],
) -> None:
    """Check a provenance bundle offline against a policy; print the history."""
    from ledger.verify.provenance import ProvenanceError, verify_provenance

    try:
        data = json.loads(bundle.read_text())
    except FileNotFoundError:
        raise _fail(f"no bundle at {bundle}") from None
    except ValueError as error:
        raise _fail(f"{bundle} is not JSON: {error}") from None
    try:
        checked = verify_provenance(data, _load_policy(policy))
    except ProvenanceError as error:
        errors.print(f"[bold red]FAILED[/] {error}", highlight=False)
        raise typer.Exit(8) from None
    console.print(f"unit {checked.unit_id}: {len(checked.history)} event(s) included in the "
                  f"log of size {checked.tree_size}, cosigned by "
                  f"{', '.join(checked.cosigners) or 'no one'}")
    for entry in checked.history:
        console.print(f"  v{entry['version']} {entry['at']} {entry['type']:<14} holder "
                      f"{entry['holder']} price {entry['price']}", highlight=False)
    console.print("verdict [bold green]OK[/]")


api_keys_app = typer.Typer(help="API keys for the HTTP API: issue, list, revoke.",
                           no_args_is_help=True)
app.add_typer(api_keys_app, name="api-keys")
RoleOption = Annotated[str, typer.Option(
    "--role", help="admin, creator, channel, auditor or verifier.")]


@api_keys_app.command("issue")
def api_keys_issue(
    role: RoleOption,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="The creator or channel id the key acts for (creator and channel "
        "keys only).")] = None,
    label: Annotated[str, typer.Option("--label", help="A note for whoever reads the list.")]
    = "",
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {key_id, token, role, "
                                          "subject} as JSON.")] = False,
) -> None:
    """Issue a key. The token is printed once; only its hash is stored."""
    from ledger.store.apikeys import check_grant

    try:
        check_grant(role, subject, label)  # refused before the store is touched
    except ValueError as error:
        raise _fail(str(error)) from None
    who, token = _with_keys(db, lambda keys: keys.issue(role, subject, label), create=True)
    if as_json:
        sys.stdout.write(json.dumps({"key_id": who.key_id, "token": token, "role": who.role.value,
                                     "subject": who.subject}) + "\n")
    else:
        sys.stdout.write(token + "\n")
    errors.print(f"issued {who.role.value} key {who.key_id}"
                 f"{f' for {who.subject}' if who.subject else ''}; the token is shown only "
                 "this once", highlight=False)


@api_keys_app.command("list")
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
        table.add_row(row["key_id"], row["role"], row["subject"] or "", row["label"],
                      row["created_at"], row["revoked_at"] or "")
    console.print(table)


@api_keys_app.command("revoke")
def api_keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the 12 hex digits after lk_).")],
    db: DbOption = None,
) -> None:
    """Revoke a key: refused at once by this process's servers' next lookup (within
    5 s on servers that cached it)."""
    if not _with_keys(db, lambda keys: keys.revoke(key_id)):
        raise _fail(f"no live API key {key_id!r} (unknown or already revoked)")
    console.print(f"revoked {key_id}")


def _with_keys(db: str | None, work: Callable[[ApiKeyStore], T], *, create: bool = False) -> T:
    """Run ``work`` on the key table at ``db``; any store failure is one line.

    Without ``create``, a SQLite file that is not there is refused rather than
    made. With it, the store and its key table are created if need be.
    """
    from ledger.store.apikeys import open_api_keys

    url = _url(db)
    if not create and not url.exists():
        raise _fail(f"no ledger database at {url.display()}")
    try:
        with open_api_keys(url, create=create) as keys:
            return work(keys)
    except Exception as error:  # no key table, no server, a file we cannot write...
        if isinstance(error, typer.Exit):
            raise
        text = str(error).strip()
        raise _fail(f"cannot {'write' if create else 'read'} API keys at {url.display()}: "
                    f"{text.splitlines()[0] if text else type(error).__name__}") from None


views_app = typer.Typer(help="The read views: status and rebuild.", no_args_is_help=True)
app.add_typer(views_app, name="views")


@views_app.command("status")
def views_status(db: DbOption = None) -> None:
    """How far the views have read the store."""
    from ledger.projections import ProjectionStore
    from ledger.store.records import RecordReader

    try:
        with RecordReader(_url(db)) as reader:
            views = ProjectionStore(reader.recorder, create=False)
            if not views.exists():
                raise _fail("this store has no views yet (ledger serve or ledger views rebuild "
                            "makes them)")
            at, head = views.position(), views.store_position()
    except StoreMissingError as error:
        raise _fail(str(error)) from None
    console.print(f"views at position {at.position:,} of {head:,} ({head - at.position:,} "
                  f"behind); {at.events:,} events applied; last event {at.last_event_at}, "
                  f"applied {at.applied_at}", highlight=False)


@views_app.command("rebuild")
def views_rebuild(db: DbOption = None) -> None:
    """Drop the views and rebuild them from the first event (a running
    server's views follow on from wherever the rebuild has got to)."""
    from ledger.projections import ProjectionStore
    from ledger.store.records import RecordReader

    try:
        with RecordReader(_url(db)) as reader:
            views = ProjectionStore(reader.recorder, bands=Settings().band_policy())
            views.reset()
            head = views.store_position()
            applied = 0
            with _progress() as progress:
                task = progress.add_task("rebuilding views", total=head)
                while (changes := views.apply_next(_timestamp_now)) is not None:
                    applied += changes.events
                    progress.update(task, completed=changes.position)
            position = views.position().position
    except StoreMissingError as error:
        raise _fail(str(error)) from None
    except ValueError as error:  # a band setting out of order
        raise _fail(str(error)) from None
    console.print(f"views rebuilt: {applied:,} events applied, position {position:,}")


codes_app = typer.Typer(help="Redemption codes: the keyring, key rotation, imports, counts.",
                        no_args_is_help=True)
app.add_typer(codes_app, name="codes")
KeyringOption = Annotated[Path | None, typer.Option(
    "--keyring", help="The code keyring file (default: $LEDGER_CODE_KEYRING_FILE).")]
GoodOption = Annotated[str, typer.Option("--good", help="The good's id (a redemption-code "
                                         "good).")]
TierOption = Annotated[str, typer.Option("--tier", help="The tier's name.")]
CODES_PER_CHUNK = 1_000  # codes in one import command (one transaction)


@codes_app.command("keyring")
def codes_keyring(
    out: Annotated[Path, typer.Option("--out", help="The keyring file to create (mode 0600; "
                                      "keep it apart from the database).")],
) -> None:
    """Create a new code keyring and print its active key id."""
    import os

    from ledger.store.codevault import Keyring

    try:  # claim the name first: an existing file is never overwritten
        os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise _fail(f"{out} exists; keyrings are never overwritten") from None
    except OSError as error:
        raise _fail(f"cannot write {out}: {error.strerror}") from None
    ring = Keyring.generate()
    try:
        _save_keyring(ring, out)
    except typer.Exit:
        out.unlink(missing_ok=True)
        raise
    console.print(ring.active, highlight=False, soft_wrap=True)
    errors.print(f"wrote the code keyring {out} (mode 0600); keep it apart from the database "
                 "and back it up: without it no sealed code opens", highlight=False, soft_wrap=True)


@codes_app.command("rotate")
def codes_rotate(
    keyring: KeyringOption = None,
    db: DbOption = None,
    retire: Annotated[bool, typer.Option("--retire", help="Then remove from the ring every "
                                         "key no sealed code uses any more.")] = False,
) -> None:
    """Add a new key to the ring, make it active and re-seal every code in the
    vault under it. Servers reading the same keyring file pick it up by themselves."""
    from ledger.store.codevault import VaultError, open_vault

    path = _keyring_path(keyring)
    ring = _load_keyring(path)
    url = _url(db)
    if not url.exists():
        raise _fail(f"no ledger database at {url.display()}")
    try:
        with open_vault(url, ring, create=False) as vault:
            _check_ring_fits(vault.key_usage(), ring, path)  # before the ring is touched
            old = sorted(ring.keys)
            new_id = ring.add_key()
            _save_keyring(ring, path)  # first: no row is ever sealed under an unsaved key
            resealed = vault.reencrypt(ring)
            usage = vault.key_usage()
            unused = [key for key in old if not usage.get(key)]
            if retire and unused:
                kept = type(ring)(ring.ref_key, {k: v for k, v in ring.keys.items()
                                                 if k not in unused}, ring.active)
                _save_keyring(kept, path)
                # A process still on the old ring may have sealed a code since the
                # count: re-seal it under the new key (this ring still opens it).
                resealed += vault.reencrypt(ring)
                usage = vault.key_usage()
    except typer.Exit:
        raise
    except VaultError as error:
        raise _fail(str(error)) from None
    except Exception as error:  # no vault table, no server...
        raise _fail(f"cannot rotate the code vault at {url.display()}: {_first_line(error)}") \
            from None
    console.print(f"added key {new_id} to {path}, now active; re-sealed {resealed:,} "
                  f"code(s) under it", highlight=False, soft_wrap=True)
    for key in sorted(set(usage) | {new_id}):
        console.print(f"  {key}  {usage.get(key, 0):,} code(s)"
                      f"{'  (active)' if key == new_id else ''}", highlight=False, soft_wrap=True)
    if retire:
        console.print(f"retired {', '.join(unused)}" if unused else
                      "retired no key (every key is still in use)", highlight=False, soft_wrap=True)
    elif unused:
        console.print(f"no code uses {', '.join(unused)} any more: `ledger codes rotate "
                      "--retire` removes them from the ring", highlight=False, soft_wrap=True)


@codes_app.command("import")
def codes_import(
    good: GoodOption,
    tier: TierOption,
    file: Annotated[Path | None, typer.Option("--file", help="One code per line (blank lines "
                                              "ignored, surrounding spaces stripped).")]
    = None,
    code_range: Annotated[str | None, typer.Option(
        "--range", help="PREFIX:WIDTH:START-END: PREFIX then the counter from START to END, "
        "zero-padded to WIDTH digits (e.g. GAME-:6:1-5000).")] = None,
    keyring: KeyringOption = None,
    db: DbOption = None,
) -> None:
    """Import redemption codes into a tier, in chunks of 1,000. Each chunk's
    idempotency key comes from the good, the tier, the SHA-256 of the input
    and the chunk's index: running the same import again (after an
    interruption, say) imports nothing twice. The input is checked whole
    first: one bad or already imported code refuses all of it."""
    import hashlib

    from ledger.domain.code import check_code
    from ledger.domain.code import code_range as code_range_of
    from ledger.domain.errors import LedgerError
    from ledger.domain.ids import code_id_for, command_id_for
    from ledger.service import Ledger, Replayed
    from ledger.store.codevault import VaultError

    if (file is None) == (code_range is None):
        raise _fail("give either --file PATH or --range PREFIX:WIDTH:START-END")
    batches: list[tuple[list[str], dict[str, object] | None]] = []  # (codes, sub-range)
    lines: list[int] = []  # each code's line in the file (a range: its place)
    try:
        if file is not None:
            texts, lines = _read_codes(file)
            source = "\n".join(texts) + "\n"
            for index, text in enumerate(texts):
                check_code(text, field=f"{file} line {lines[index]}")
            batches = [(texts[i:i + CODES_PER_CHUNK], None)
                       for i in range(0, len(texts), CODES_PER_CHUNK)]
        else:
            assert code_range is not None
            prefix, width, start, end = _parse_range(code_range)
            source = f"range {prefix}:{width}:{start}-{end}\n"
            for low in range(start, end + 1, CODES_PER_CHUNK):
                piece: dict[str, object] = {"prefix": prefix, "width": width, "start": low,
                                            "end": min(low + CODES_PER_CHUNK - 1, end)}
                batches.append((code_range_of(**piece), piece))
            lines = list(range(1, end - start + 2))
    except LedgerError as error:
        raise _fail(error.message) from None
    every = [text for chunk, _ in batches for text in chunk]
    digest = hashlib.sha256(source.encode()).hexdigest()
    ring_path = _keyring_path(keyring)
    ring = _load_keyring(ring_path)
    url = _url(db)
    if not url.exists():
        raise _fail(f"no ledger database at {url.display()}")

    def where(place: int) -> str:
        return f"line {place} of {file}" if file is not None else f"code #{place} of the range"

    imported = replayed = 0
    try:
        with Ledger(url, code_keyring=ring) as ledger:
            _check_ring_fits(ledger.vault.key_usage(), ring, ring_path)
            stored = ledger.good(good)  # refused before anything is stored
            stored.tier(tier)
            if stored.spec.kind != "redemption-code":
                raise _fail(f"good {stored.id} is a {stored.spec.kind}, not a redemption-code: "
                            "its units carry no codes")
            keys = [f"codes-{stored.id}-{tier}-{digest[:32]}-{index}"
                    for index in range(len(batches))]
            refs = ledger.vault.refs(every)
            seen: dict[str, int] = {}
            for position, ref in enumerate(refs):
                if (earlier := seen.setdefault(ref, position)) != position:
                    raise _fail(f"{where(lines[position])} repeats {where(lines[earlier])}; "
                                "nothing imported")
            # A chunk already recorded (an earlier run of this import) is
            # replayed; any other chunk's codes must all be new.
            done = ledger.event_store.existing([command_id_for("", key) for key in keys])
            fresh = [position for index, (chunk, _) in enumerate(batches)
                     if command_id_for("", keys[index]) not in done
                     for position in range(index * CODES_PER_CHUNK,
                                           index * CODES_PER_CHUNK + len(chunk))]
            taken = ledger.event_store.existing([code_id_for(refs[p]) for p in fresh])
            if taken:
                first = next(p for p in fresh if code_id_for(refs[p]) in taken)
                raise _fail(f"{len(taken):,} code(s) were imported before, the first at "
                            f"{where(lines[first])}; nothing imported")
            with _progress() as progress:
                task = progress.add_task("importing codes", total=len(every))
                for index, (chunk, part) in enumerate(batches):
                    answer = ledger.import_codes(
                        stored.id, tier, codes=None if part else chunk, code_range=part,
                        idempotency_key=keys[index])
                    if isinstance(answer, Replayed):
                        replayed += len(chunk)
                    else:
                        imported += len(chunk)
                    progress.update(task, advance=len(chunk))
            counts = ledger.code_counts(stored.id, tier)
    except typer.Exit:
        raise
    except (LedgerError, VaultError) as error:
        text = error.message if isinstance(error, LedgerError) else str(error)
        partly = f" ({imported:,} code(s) imported first; run the same import again to " \
            "finish it)" if imported else ""
        raise _fail(f"{text}{partly}") from None
    except Exception as error:
        raise _fail(f"cannot import codes at {url.display()}: {_first_line(error)}") from None
    chunks = len(batches)
    console.print(f"imported {imported:,} code(s) in {chunks:,} chunk(s) of up to "
                  f"{CODES_PER_CHUNK:,}" + (f"; {replayed:,} were imported already by an "
                                             "earlier run of this import" if replayed else ""),
                  highlight=False, soft_wrap=True)
    _print_code_counts(counts)


@codes_app.command("status")
def codes_status(
    good: GoodOption,
    tier: TierOption,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """A tier's redemption codes: imported, available, lent to holds, bound to units."""
    from ledger.domain.errors import LedgerError
    from ledger.service import Ledger

    url = _url(db)
    if not url.exists():
        raise _fail(f"no ledger database at {url.display()}")
    try:
        with Ledger(url) as ledger:
            counts = ledger.code_counts(good, tier)
    except LedgerError as error:
        raise _fail(error.message) from None
    except Exception as error:
        raise _fail(f"cannot read {url.display()}: {_first_line(error)}") from None
    if not counts["coded"]:
        raise _fail(f"tier {tier!r} of good {counts['good_id']} carries no redemption codes")
    if as_json:
        sys.stdout.write(json.dumps({k: counts[k] for k in (
            "good_id", "tier", "imported", "available", "held", "bound")}) + "\n")
        return
    _print_code_counts(counts)


def _print_code_counts(counts: dict[str, object]) -> None:
    console.print(f"good {counts['good_id']} tier {counts['tier']}: {counts['imported']:,} "
                  f"imported, {counts['available']:,} available, {counts['held']:,} held, "
                  f"{counts['bound']:,} bound", highlight=False, soft_wrap=True)


def _keyring_path(given: Path | None) -> Path:
    if given is not None:
        return given
    configured = Settings().code_keyring_file
    if not configured:
        raise _fail("no code keyring: give --keyring FILE or set LEDGER_CODE_KEYRING_FILE "
                    "(`ledger codes keyring --out FILE` makes one)")
    return Path(configured)


def _check_ring_fits(usage: dict[str, int], ring: Keyring, path: Path) -> None:
    """Refuse a keyring that lacks a key the vault's codes are sealed under:
    most likely another store's ring (whose refs would not find this store's
    codes), or a copy from before a rotation."""
    strangers = sorted(set(usage) - set(ring.keys))
    if strangers:
        raise _fail(f"the vault holds codes sealed under key(s) {', '.join(strangers)}, which "
                    f"{path} does not hold: is it this store's current keyring?")


def _save_keyring(ring: Keyring, path: Path) -> None:
    import os

    from ledger.store.codevault import VaultError

    try:
        ring.save(path)
        os.chmod(path, 0o600)  # even if a stale temporary file had looser rights
    except VaultError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(f"cannot write the code keyring {path}: {error.strerror}") from None


def _read_codes(path: Path) -> tuple[list[str], list[int]]:
    """A file's codes (stripped, blank lines skipped) and the line of each."""
    from ledger.domain.errors import InvalidInputError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(f"no codes file at {path}") from None
    except OSError as error:
        raise _fail(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(str(path), "is not text (UTF-8)") from None
    codes, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if stripped := line.strip():
            codes.append(stripped)
            lines.append(number)
    if not codes:
        raise InvalidInputError(str(path), "holds no codes")
    return codes, lines


def _parse_range(text: str) -> tuple[str, int, int, int]:
    from ledger.domain import limits
    from ledger.domain.errors import InvalidInputError

    parts = text.rsplit(":", 2)
    bounds = parts[-1].split("-")
    numbers = [parts[1], *bounds] if len(parts) == 3 else []
    if len(bounds) != 2 or not numbers or not all(n.isascii() and n.isdigit() for n in numbers):
        raise InvalidInputError("--range", f"{text!r} is not PREFIX:WIDTH:START-END "
                                "(e.g. GAME-:6:1-5000)")
    start, end = int(bounds[0]), int(bounds[1])
    if start > end:
        raise InvalidInputError("--range", "END must not be below START")
    if end - start + 1 > limits.TIER_QUOTA_MAX:
        raise InvalidInputError("--range", f"at most {limits.TIER_QUOTA_MAX:,} codes at once")
    return parts[0], int(parts[1]), start, end


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _timestamp_now() -> str:
    from datetime import UTC, datetime

    from ledger.domain.model import format_timestamp

    return format_timestamp(datetime.now(UTC))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
