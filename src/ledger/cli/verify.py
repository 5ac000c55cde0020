"""``ledger verify``: the events, the log's checkpoints and the views, checked;
the report and its exit code."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli.common import (
    DbOption,
    _event_count,
    _fail,
    _load_policy,
    _load_vkey,
    _progress,
    _store_url,
    console,
    errors,
)
from ledger.config import Settings
from ledger.domain.errors import InvariantError
from ledger.store.database import DatabaseURL
from ledger.store.records import StoreMissingError
from ledger.tuning import tune_gc

if TYPE_CHECKING:
    from collections.abc import Callable

    from ledger.projections.replay import ReplayReport
    from ledger.tlog.keys import Verifier as NoteVerifier
    from ledger.verify import Report


ExportOption = Annotated[
    Path | None,
    typer.Option("--export", help="Verify an exported JSON Lines file instead of a database."),
]
BundleOption = Annotated[
    Path | None,
    typer.Option(
        "--bundle", help="Verify an audit bundle directory (ledger export --bundle) offline."
    ),
]
JsonOption = Annotated[
    Path | None,
    typer.Option("--json", help="Write the report as JSON to this file ('-' for stdout)."),
]
LogKeyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--log-key",
        help="A trusted log verifier key (vkey text, or a file holding one); "
        "checkpoints must carry its signature. Repeatable.",
    ),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="C2SP tlog-policy file: trusted log keys, verifiers and the quorum "
        "the latest checkpoint's cosignatures must meet.",
    ),
]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="Remember the verified checkpoint here; next time, a log that no "
        "longer contains it (rolled back or rewritten) fails.",
    ),
]
ViewsOption = Annotated[
    bool,
    typer.Option(
        "--views/--no-views",
        help="Given a database, also check that its read views equal a fresh replay of its events.",
    ),
]
MaxUnsignedAgeOption = Annotated[
    str | None,
    typer.Option(
        "--max-unsigned-age",
        metavar="SECONDS",
        help="With --log-key or --policy: how many "
        "seconds older than the newest event an event may be and still be outside every "
        "checkpoint (default: $LEDGER_VERIFY_MAX_UNSIGNED_AGE or 300).",
    ),
]


def verify(
    db: DbOption = None,
    export: ExportOption = None,
    bundle: BundleOption = None,
    json_out: JsonOption = None,
    log_key: LogKeyOption = None,
    policy: PolicyOption = None,
    state: StateOption = None,
    views: ViewsOption = True,
    max_unsigned_age: MaxUnsignedAgeOption = None,
) -> None:
    """Check every event's encoding and hash chain, every rule the events
    alone can prove, and every signed checkpoint of the log against the
    events; given a database, also that the views equal a fresh replay.
    Exit codes: 0 all hold; 2 could not run; 3 chain or encoding; 4 domain
    rule; 5 checkpoint signature; 6 quorum; 7 consistency, split view or
    rollback; 9 views differ from the replay; 10 given a key or a policy,
    no checkpoint, or events left unsigned too long; 11 the stored tree the
    server proves from differs from the events."""
    from ledger.verify.classes import exit_code

    tune_gc()

    bound = _unsigned_age(max_unsigned_age)
    keys = _log_keys(log_key or [])
    # (the store looked up once, for the bar's total, the checks and the replay)
    url = None if bundle is not None or export is not None else _store_url(db)
    source = _Source(url, export, bundle, policy, state)
    total = None if url is None else _event_count(url)
    with _progress() as progress:
        task = progress.add_task("verifying the events", total=total)

        def advance(done: int) -> None:
            progress.update(task, completed=done)

        report = _verify_source(source, keys, bound, advance)
        replay = None
        views_skipped = None
        if views and url is not None:
            if report.ok:
                progress.update(
                    task, description="replaying the views to compare", completed=0, total=total
                )
                replay = _check_views(url, advance)
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
        _write_json(json_out, report, replay, views_skipped)
    if report.ok and state is not None and report.log and report.log["latest_size"]:
        _write_state(state, report.log["latest_size"], report.log["latest_root"])
    if not report.ok:
        raise typer.Exit(exit_code(f.check for f in report.findings))
    raise typer.Exit(VIEWS_DIFFER_EXIT if replay is not None and not replay.ok else 0)


def _log_keys(given_keys: list[str]) -> list[NoteVerifier]:
    """--log-key: each a vkey's text, or a file holding one."""
    return [_load_vkey(given) for given in given_keys]


@dataclass(frozen=True, slots=True)
class _Source:
    """What to verify (--db, --export or --bundle), and with what
    (--policy, --state)."""

    db: DatabaseURL | None  # None: --export or --bundle
    export: Path | None
    bundle: Path | None
    policy: Path | None
    state: Path | None


def _verify_source(
    source: _Source, keys: list[NoteVerifier], bound: float, advance: Callable[[int], None]
) -> Report:
    """The report on the bundle, the export file or the database."""
    from ledger.verify import BundleError, verify_bundle, verify_export, verify_store

    policy, state = source.policy, source.state
    try:
        if source.bundle is not None:
            if not (source.bundle / "entries.jsonl").is_file():
                raise _fail(f"no audit bundle at {source.bundle} (no entries.jsonl)")
            try:
                report = verify_bundle(
                    source.bundle,
                    advance,
                    log_keys=keys,
                    policy=_load_policy(policy) if policy else None,
                    remembered=_read_state(state) if state else None,
                    max_unsigned_age=bound,
                )
            except BundleError as error:
                raise _fail(str(error)) from None
            _say_whose_policy(source.bundle, policy, keys)  # (once the bundle could be read)
            return report
        if source.export is not None:
            if not source.export.is_file():
                raise _fail(f"no export file at {source.export}")
            return verify_export(
                source.export,
                advance,
                log_keys=keys,
                policy=_load_policy(policy) if policy else None,
            )
        if source.db is None:
            raise InvariantError("verify: no --db, --export or --bundle after the checks")
        return verify_store(
            source.db,
            advance,
            log_keys=keys,
            policy=_load_policy(policy) if policy else None,
            remembered=_read_state(state) if state else None,
            max_unsigned_age=bound,
        )
    except StoreMissingError as error:
        raise _fail(str(error)) from None


def _say_whose_policy(bundle: Path, policy: Path | None, keys: list[NoteVerifier]) -> None:
    """A bundle verified without --policy is judged by the policy the
    operator put in it: say so, on stderr, before the report."""
    from ledger.verify.sources import BUNDLE_POLICY

    if policy is not None:
        return
    if (bundle / BUNDLE_POLICY).is_file():
        errors.print(
            f"note: no --policy: the checkpoints are judged by the bundle's own "
            f"{BUNDLE_POLICY}, which the ledger's operator wrote; an auditor brings "
            "their own (--policy FILE)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    elif not keys:
        errors.print(
            f"note: no --policy, no --log-key and no {BUNDLE_POLICY} in the bundle: "
            "no signature is checked",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _write_json(
    json_out: Path, report: Report, replay: ReplayReport | None, views_skipped: str | None
) -> None:
    """--json: the report, and what the views' check found (or why none)."""
    views_json = (
        replay.to_json()
        if replay is not None
        else {"checked": False, "reason": views_skipped}
        if views_skipped
        else None
    )
    text = json.dumps(report.to_json() | ({"views": views_json} if views_json else {}), indent=2)
    if str(json_out) == "-":
        sys.stdout.write(text + "\n")
    else:
        json_out.write_text(text + "\n")


VIEWS_DIFFER_EXIT = 9


def _unsigned_age(given: str | None) -> float:
    """--max-unsigned-age, or the setting: seconds, 0 or more."""
    if given is None:
        from pydantic import ValidationError

        try:
            return Settings().verify_max_unsigned_age
        except ValidationError as error:
            raise _fail(f"LEDGER_VERIFY_MAX_UNSIGNED_AGE: {error.errors()[0]['msg']}") from None
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
            views = ProjectionStore(reader.recorder, bands=Settings().band_policy(), create=False)
            if not views_present(views):
                return None
            try:
                version = views.version()
            except (ValueError, TypeError, OverflowError) as error:
                return ReplayReport(
                    problems=[
                        f"meta [id=1]: the views' layout version cannot be read "
                        f"({type(error).__name__}: {error})"
                    ]
                )
            if version != VIEWS_VERSION:
                errors.print(
                    f"views: laid out by another version ({version}, this is "
                    f"{VIEWS_VERSION}); not checked -- a server rebuilds them on start, "
                    "or run `ledger views rebuild`",
                    highlight=False,
                    markup=False,
                )
                return None
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                advance(done)

            return compare_with_replay(views, progress=step)
    except Exception as error:  # the database itself failed under the views
        return ReplayReport(
            problems=[f"the views cannot be read ({type(error).__name__}: {error})"]
        )


def _print_replay(replay: ReplayReport) -> None:
    rows = sum(replay.rows.values())
    if replay.ok:
        console.print(
            f"views       OK — {rows:,} rows in {len(replay.rows)} views equal a fresh "
            f"replay of {replay.events:,} events (position {replay.position:,})"
        )
        return
    if replay.mismatched_rows:
        console.print(
            f"views       [bold red]DIFFER[/] — {replay.mismatched_rows:,} of {rows:,} "
            "rows differ from a fresh replay"
        )
    else:
        console.print(
            "views       [bold red]DIFFER[/] — they cannot all be compared with a fresh replay"
        )
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


def _print_log(log: dict[str, Any] | None, plain: Callable[[str], None]) -> None:
    """The summary's lines on the log: checkpoints, signers, cosigners."""
    if log is None:
        plain("log         not checked: this source holds no checkpoint and no log")
        plain("            (a store no server has sealed, or an export file)")
        return
    signed = ", ".join(log["signers"]) if log["keys_given"] else "not checked (no --log-key)"
    plain(
        f"log         {log['verified']}/{log['checkpoints']} checkpoints match the "
        f"events; latest size {log['latest_size']:,} root {log['latest_root']}"
    )
    plain(
        f"            signed by: {signed}; {log['unsealed_events']:,} events "
        "not yet under a checkpoint"
    )
    if log["quorum"]:
        plain(
            f"            cosigned by: {', '.join(log['cosigners']) or 'no one'};"
            f" quorum {log['quorum']}"
        )


def _print_report(report: object) -> None:
    from ledger.verify import Report

    if not isinstance(report, Report):
        raise InvariantError(f"not a verification report: {type(report).__name__}")

    def plain(line: str) -> None:
        # What the store holds is printed as text, never read as markup: an
        # event type such as "[/x]" is data.
        console.print(line, highlight=False, markup=False)

    rate = report.events / report.elapsed_s if report.elapsed_s > 0 else 0.0
    plain(f"source      {report.source}")
    plain(
        f"events      {report.events:,} in {report.aggregates:,} aggregates "
        f"({report.elapsed_s:.2f} s, {rate:,.0f} events/s)"
    )
    _print_log(report.log, plain)
    if report.ok:
        console.print("verdict     [bold green]OK[/] — every chain and rule holds")
        return
    first = report.first
    if first is None:
        raise InvariantError("a failed report without a first finding")
    console.print(f"verdict     [bold red]FAILED[/] — {report.findings_total} finding(s)")
    if first.position is None and first.aggregate_id is None:
        plain("first bad   not at one event (the message says where)")
    else:
        plain(
            f"first bad   position {first.position}, aggregate {first.aggregate_id} "
            f"v{first.version} ({first.event_type})"
        )
    plain(f"            [{first.check}] {first.message}")
    others = sorted(
        (f for f in report.findings if f is not first),
        key=lambda f: f.position if f.position is not None else 0,
    )
    for finding in others[:4]:
        plain(
            f"also        position {finding.position} ({finding.event_type}) "
            f"[{finding.check}] {finding.message}"
        )
    if report.findings_total > 5:
        console.print(f"            … {report.findings_total - 5} more in the --json report")
