"""Where the verifier reads from: the event store (raw rows through
:class:`~ledger.store.records.RecordReader`) or an export file, and the
exporter that writes that file (``docs/format.md`` section 3)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.store.records import RecordReader, StoreMissingError
from ledger.tlog.c2sp import NoteError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Verifier as NoteVerifier
from ledger.tlog.policy import Policy, PolicyError, parse_policy
from ledger.tlog.signed_note import parse_note
from ledger.verify.codec import splice
from ledger.verify.log import UNSIGNED_AGE_DEFAULT, LogAuditor, LogSummary
from ledger.verify.pipeline import CHILD_MEMORY, CLEAN, HASH_SIZE, ID_OK, LEAF, Prechecker
from ledger.verify.prooftree import ProofStoreAuditor
from ledger.verify.report import Finding, Report
from ledger.verify.state import DEFAULT_BUDGET
from ledger.verify.verifier import Verifier

Progress = Callable[[int], None]
PROGRESS_EVERY = 5_000
PARALLEL_FROM = 100_000  # events: below, starting a second process is not worth it

# What reading a damaged store can raise past its first row: the database's
# own errors (a dropped table, a text column that is no UTF-8), a value the
# driver cannot convert... Each ends the reading with an ``unreadable``
# finding at the last row read, never a traceback.
_ROW_ERRORS = (Exception,)


def verify_store(  # noqa: C901, PLR0912, PLR0915 - issue 13 step 3 splits the verifier
    url: DatabaseURL,
    progress: Progress | None = None,
    *,
    log_keys: Sequence[NoteVerifier] = (),
    origin: str | None = None,
    policy: Policy | None = None,
    remembered: tuple[int, str] | None = None,
    parallel: bool | None = None,
    max_unsigned_age: float = UNSIGNED_AGE_DEFAULT,
) -> Report:
    """Verify every stored event, in commit order, and every signed
    checkpoint of the global log against those events.

    Raises :class:`~ledger.store.records.StoreMissingError` if there is no
    store at ``url``. ``progress`` is called with the number of events done
    every few thousand events and once at the end. Checkpoint signatures are
    checked against ``log_keys`` and the policy's log keys (without keys,
    only roots are checked); with a ``policy``, the latest checkpoint's
    cosignatures must meet its quorum. ``remembered`` is the (size, root) a
    previous run verified: a log that no longer contains it fails. The
    stored tree the server proves from (leaves, nodes, frontier) is compared
    with the tree of the events in the same pass
    (:mod:`ledger.verify.prooftree`).

    Given a log key or a policy, the log must be signed: a store with
    events and no checkpoint fails (``no-checkpoint``), and so does an event
    outside every checkpoint that verified and more than
    ``max_unsigned_age`` seconds older than the newest event
    (``unsigned-events``). Without either, the report only counts the
    events not yet under a checkpoint.

    ``parallel``: check each event's own bytes in a second process, ahead
    of the rules (:mod:`ledger.verify.pipeline`); None (the default) does so
    for a store of :data:`PARALLEL_FROM` events or more on a machine with
    more than one processor. The report is the same either way; the
    verifier's memory budget is then smaller by what the second process
    takes (:data:`~ledger.verify.pipeline.CHILD_MEMORY`), so that the two
    together stay within one budget.
    """
    signed_asked = bool(log_keys) or policy is not None
    if policy is not None:
        log_keys = [*log_keys, *policy.log_verifiers]
    done = 0
    last: int | None = None
    with _open(url) as reader:
        try:
            stored = reader.max_position()
        except Exception as error:  # no events table: this is no ledger store
            raise StoreUnreadableError(
                f"cannot read a ledger store at {url.display()}: {_why(error)}"
            ) from None
        if parallel is None:
            parallel = (os.cpu_count() or 1) > 1 and stored >= PARALLEL_FROM
        verifier = Verifier(memory=DEFAULT_BUDGET - CHILD_MEMORY) if parallel else Verifier()
        log = LogStore(reader.recorder, create=False)
        auditor = None
        checkpoints = _read_checkpoints(log)
        if checkpoints is not None:
            stored_checkpoints, unreadable_checkpoints = checkpoints
            # The log's checkpoints against the events, and the stored tree
            # the server proves from against the tree of the events.
            auditor = ProofStoreAuditor(
                stored_checkpoints,
                log_keys,
                origin,
                remembered=remembered,
                on_verified=verifier.mark_signed,
                stored=log,
            )
            auditor.findings.extend(unreadable_checkpoints)
        feed = verifier.feed_stored
        add = None if auditor is None else auditor.add_event
        checker = Prechecker() if parallel else None
        try:
            # Two loops on purpose: folding the one-process case into the
            # paged one (a row per page) cost it 11 % (measured on 200,000
            # events: 43k -> 38k events/s).
            if checker is None:
                for position, aggregate_id, version, event_type, state in _rows(reader):
                    # The verifier hands back the record bytes it hashed, if it
                    # spliced them: the log's leaf is the same bytes.
                    record = feed(position, aggregate_id, version, event_type, state)
                    if add is not None:
                        add(
                            position,
                            aggregate_id,
                            version,
                            record
                            if record is not None
                            else _record(aggregate_id, version, event_type, state),
                        )
                    last = position
                    done += 1
                    if progress is not None and done % PROGRESS_EVERY == 0:
                        progress(done)
            else:
                feed_checked = verifier.feed_checked
                add_leaf = None if auditor is None else auditor.add_event_leaf
                for page, found in checker.pages(_rows(reader), _ROW_ERRORS):
                    # found: a flags byte per row, then event hashes, then leaves
                    n = len(page)
                    result = found or bytes(n)
                    for i, row in enumerate(page):
                        position, aggregate_id, version, event_type, state = row
                        flags = result[i]
                        if flags & CLEAN:
                            at = n + i * HASH_SIZE
                            feed_checked(
                                position,
                                aggregate_id,
                                version,
                                event_type,
                                state,
                                result[at : at + HASH_SIZE],
                                bool(flags & ID_OK),
                            )
                            record = None
                        else:
                            record = feed(position, aggregate_id, version, event_type, state)
                        if add is not None and add_leaf is not None:
                            if flags & LEAF:
                                at = n * (1 + HASH_SIZE) + i * HASH_SIZE
                                add_leaf(
                                    position, aggregate_id, version, result[at : at + HASH_SIZE]
                                )
                            else:
                                add(
                                    position,
                                    aggregate_id,
                                    version,
                                    record
                                    if record is not None
                                    else _record(aggregate_id, version, event_type, state),
                                )
                        last = position
                        done += 1
                        if progress is not None and done % PROGRESS_EVERY == 0:
                            progress(done)
        except _ROW_ERRORS as error:
            after = "the start" if last is None else f"position {last}"
            verifier.report_unreadable(
                None, f"the stored events cannot be read after {after}: {_why(error)}"
            )
        else:
            if auditor is not None:  # the stored rows no event reached, while the store is open
                auditor.read_the_rest()
        finally:
            if checker is not None:
                checker.close()
    if progress is not None:
        progress(done)
    report = verifier.finish(url.display())
    if auditor is not None:
        findings = auditor.finish()
        summary = auditor.summary
        if policy is not None and summary.latest_size:
            findings += _check_quorum(policy, log_keys, summary, url)
        report.findings.extend(findings)
        report.findings_total += len(findings) + auditor.dropped
        report.log = summary.to_json()
    elif remembered is not None:
        report.findings.append(
            Finding(
                None,
                None,
                None,
                None,
                "rollback",
                "the store has no log, but one was verified before",
            )
        )
        report.findings_total += 1
    if signed_asked:
        _add(
            report,
            _signing_findings(
                verifier,
                report.events,
                None if auditor is None else auditor.summary,
                max_unsigned_age,
                "the store has no log tables" if auditor is None else "",
            ),
        )
    return report


def _signing_findings(
    verifier: Verifier, events: int, summary: LogSummary | None, max_age: float, why: str = ""
) -> list[Finding]:
    """What an auditor who named a log key or a policy is told of a log
    that is not (all) signed: no checkpoint over its events at all, or an
    event left outside every verified checkpoint for longer than
    ``max_age`` seconds before the newest event."""
    if not events:
        return []
    if summary is None or not summary.checkpoints:
        return [
            Finding(
                None,
                None,
                None,
                None,
                "no-checkpoint",
                f"the log has {events} events and no checkpoint"
                f"{f' ({why})' if why else ''}: nothing of it is signed by a log key "
                "(a server signs within seconds, and never removes a checkpoint)",
                expected=">= 1 checkpoint",
                actual="0",
            )
        ]
    found = verifier.unsigned_finding(max_age)
    return [] if found is None else [found]


def _add(report: Report, findings: list[Finding]) -> None:
    report.findings.extend(findings)
    report.findings_total += len(findings)


Row = tuple[int, str, int, str, bytes]  # position, aggregate id, version, type, state
_PAGE = 2_000  # RecordReader's page
_HEX_DIGITS = "0123456789abcdef"


def _rows(reader: RecordReader) -> Iterator[Row]:  # noqa: PLR0912 - measured fast read path (SQLite rows)
    """The stored rows as ``reader`` yields them -- same pages, same values
    -- but read faster from SQLite: plain columns, and each id formatted
    from its 32 hex digits rather than through a UUID. Where the library
    would stop (an id that is no UUID, a state that is no bytes, text that
    is no UTF-8), this reads on and yields the value as stored, for the
    verifier to report at its row."""
    recorder: Any = reader.recorder
    datastore: Any = getattr(recorder, "datastore", None)
    if not (
        type(recorder).__module__ == "eventsourcing.sqlite"
        and getattr(datastore, "originator_id_type", None) == "uuid"
        and isinstance(getattr(recorder, "events_table_name", None), str)
    ):
        for row in reader:
            yield row.position, row.aggregate_id, row.version, row.event_type, row.state
        return
    # As the library's select_notifications, less the columns it does not need.
    table = recorder.events_table_name
    statement = (
        "SELECT rowid, originator_id, originator_version, topic, state FROM "  # noqa: S608
        f"{table} WHERE rowid>=? ORDER BY rowid LIMIT ?"
    )
    convert = recorder.convert_originator_id
    formatted: dict[str, str] = {}  # ids recur (a stock's in each of its events)
    start = 1
    while True:
        with datastore.transaction(commit=False) as cursor:
            plain = getattr(cursor, "sqlite_cursor", None)
            if plain is not None:
                plain.row_factory = None  # tuples, not sqlite3.Row: the same values
            try:
                cursor.execute(statement, (start, _PAGE))
                fetched = cursor.fetchall()
            except sqlite3.OperationalError:
                # A text column that is no UTF-8 fails the whole page: read
                # its rows one by one, such a value as its bytes.
                fetched = _rows_one_by_one(cursor, table, start)
        if not fetched:
            return
        if len(formatted) > 8_192:
            formatted.clear()
        # As the reader: a page's ids are converted before any of its rows is
        # used, each state as its row is.
        page: list[Row] = []
        for position, originator_id, version, event_type, state in fetched:
            aggregate_id = formatted.get(originator_id) if type(originator_id) is str else None
            if aggregate_id is None:
                if (
                    type(originator_id) is str
                    and len(originator_id) == 32
                    and not originator_id.strip(_HEX_DIGITS)
                ):
                    h = originator_id  # what str(UUID(h)) gives, without the UUID
                    aggregate_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                    formatted[h] = aggregate_id
                else:
                    try:
                        aggregate_id = str(convert(originator_id))
                    except (ValueError, TypeError, AttributeError):
                        # No UUID: the verifier says so, and reads on.
                        aggregate_id = originator_id
            page.append((position, aggregate_id, version, event_type, state))
        for item in page:
            state = item[4]
            if type(state) is bytes or not isinstance(state, (bytearray, memoryview)):
                yield item  # a state that is no bytes at all: the verifier says so
            else:
                yield (*item[:4], bytes(state))
        start = fetched[-1][0] + 1


def _rows_one_by_one(cursor: Any, table: str, start: int) -> list[tuple[Any, ...]]:
    """A page of stored rows, each read alone; a text value that is no
    UTF-8 is read as its bytes (which no id, type or version is)."""
    cursor.execute(
        f"SELECT rowid FROM {table} WHERE rowid>=? ORDER BY rowid LIMIT ?",  # noqa: S608
        (start, _PAGE),
    )
    rowids = [row[0] for row in cursor.fetchall()]
    names = ("originator_id", "originator_version", "topic", "state")
    columns = ", ".join(
        f"typeof({c}), CASE WHEN typeof({c})='text' THEN CAST({c} AS BLOB) ELSE {c} END"
        for c in names
    )
    rows = []
    for rowid in rowids:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE rowid=?", (rowid,))  # noqa: S608
        found = cursor.fetchone()
        if found is None:
            continue
        values: list[Any] = [rowid]
        for kind, stored in zip(found[::2], found[1::2], strict=True):
            value = stored
            if kind == "text":
                with contextlib.suppress(UnicodeDecodeError):
                    value = stored.decode("utf-8")
            values.append(value)
        rows.append(tuple(values))
    return rows


def _record(aggregate_id: Any, version: Any, event_type: Any, state: Any) -> bytes:
    """The record bytes of a row for the log's tree: the splice, or -- for
    a row whose columns are not even of their types (reported as such) --
    bytes that stand for it."""
    try:
        return splice(aggregate_id, version, event_type, state)
    except Exception:
        return repr((aggregate_id, version, event_type, state)).encode()


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class StoreUnreadableError(StoreMissingError):
    """The database is there but holds no store that can be read at all (no
    events table, a file that is no SQLite database, a server that does not
    answer): the verification cannot run."""


@contextlib.contextmanager
def _open(url: DatabaseURL) -> Iterator[RecordReader]:
    try:
        reader = RecordReader(url)
    except StoreMissingError:
        raise
    except Exception as error:
        raise StoreUnreadableError(
            f"cannot read a ledger store at {url.display()}: {_why(error)}"
        ) from None
    with reader:
        yield reader


def _read_checkpoints(log: LogStore) -> tuple[list[StoredCheckpoint], list[Finding]] | None:
    """The stored checkpoints (None: the store has no log), each row judged
    as it is: a row whose columns are not of their types is reported
    (``checkpoint-mismatch``, or ``checkpoint-signature`` if its note is no
    text) and audited by what its signed note says, if it says anything."""
    try:
        rows = log.checkpoint_rows()
    except Exception:  # no such table: the store predates the log
        return None
    checkpoints: list[StoredCheckpoint] = []
    findings: list[Finding] = []
    for size, root, note, signed_at in rows:
        where = f"tlog_checkpoints row of size {size!r}"
        if not isinstance(note, str):
            findings.append(
                Finding(
                    None,
                    None,
                    None,
                    None,
                    "checkpoint-signature",
                    f"{where}: its note is {type(note).__name__}, not text",
                )
            )
            continue
        size_ok = type(size) is int and 0 <= size <= _MAX_SIZE
        root_ok = isinstance(root, (bytes, bytearray, memoryview))
        if size_ok and root_ok:
            checkpoints.append(StoredCheckpoint(size, bytes(root), note, str(signed_at)))
            continue
        what = ", ".join(
            text
            for ok, text in (
                (size_ok, "its size is no tree size"),
                (root_ok, f"its root is {type(root).__name__}, not bytes"),
            )
            if not ok
        )
        try:
            signed = Checkpoint.parse(parse_note(note).text)
        except (NoteError, ValueError) as error:
            findings.append(
                Finding(
                    None,
                    None,
                    None,
                    None,
                    "checkpoint-signature",
                    f"{where}: {what}, and its note does not parse ({error})",
                )
            )
            continue
        findings.append(
            Finding(
                None,
                None,
                None,
                None,
                "checkpoint-mismatch",
                f"{where}: {what}; audited as its signed note says (size {signed.size})",
            )
        )
        checkpoints.append(StoredCheckpoint(signed.size, signed.root, note, str(signed_at)))
    return checkpoints, findings


_MAX_SIZE = 2**63 - 1


def _check_quorum(
    policy: Policy, log_keys: Sequence[NoteVerifier], summary: LogSummary, url: DatabaseURL
) -> list[Finding]:
    """The latest checkpoint, with the cosignatures the ledger received,
    must satisfy the policy's quorum."""
    try:
        with RecordReader(url) as reader:
            lines = LogStore(reader.recorder, create=False).cosignatures(summary.latest_size)
    except Exception as error:
        return [
            Finding(
                None,
                None,
                None,
                None,
                "quorum",
                f"checkpoint of size {summary.latest_size}: its cosignatures cannot be "
                f"read from tlog_cosignatures ({_why(error)})",
            )
        ]
    note = summary.latest_note + "".join(line + "\n" for line in lines.values())
    return _quorum_findings(policy, log_keys, summary, note)


def _quorum_findings(
    policy: Policy, log_keys: Sequence[NoteVerifier], summary: LogSummary, note: str
) -> list[Finding]:
    try:
        result = policy.check(note, log_verifiers=log_keys)
    except NoteError as error:
        return [
            Finding(
                None,
                None,
                None,
                None,
                "checkpoint-signature",
                f"checkpoint of size {summary.latest_size} with its cosignatures: {error}",
            )
        ]
    summary.origin = result.checkpoint.origin
    summary.cosigners = sorted(result.cosigners)
    summary.quorum = "met" if result.quorum_met else "not met"
    findings = [
        Finding(
            None,
            None,
            None,
            None,
            "quorum",
            f"checkpoint of size {summary.latest_size}: cosignature by {name!r} "
            f"does not verify: {why}",
        )
        for name, why in sorted(result.invalid_cosigners.items())
    ]
    if not result.quorum_met:
        findings.append(
            Finding(
                None,
                None,
                None,
                None,
                "quorum",
                f"checkpoint of size {summary.latest_size} is cosigned by "
                f"{', '.join(summary.cosigners) or 'no one'}: the policy's quorum is not met",
            )
        )
    return findings


def verify_export(
    path: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    log_keys: Sequence[NoteVerifier] = (),
    policy: Policy | None = None,
) -> Report:
    """Verify an export file (JSON Lines, one record per line). An export
    holds no checkpoints: given a log key or a policy, a non-empty one
    fails with ``no-checkpoint`` (an audit bundle carries them)."""
    verifier = Verifier()
    _feed_lines(verifier, path, progress)
    report = verifier.finish(os.fspath(path))
    if log_keys or policy is not None:
        _add(
            report,
            _signing_findings(
                verifier,
                report.events,
                None,
                UNSIGNED_AGE_DEFAULT,
                "an export file holds none: verify the audit bundle, ledger export --bundle, "
                "with ledger verify --bundle",
            ),
        )
    return report


def _feed_lines(
    verifier: Verifier,
    path: str | os.PathLike[str],
    progress: Progress | None,
    also: Callable[[int, bytes], None] | None = None,
) -> None:
    """Feed the export file's records to ``verifier`` (and to ``also``)."""
    done = 0
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.endswith(b"\n"):
                line = line[:-1]  # noqa: PLW2901 - the record is the line less its newline
            else:
                verifier.report_line(number, "bad-line", "the last line has no newline")
            if not line:
                verifier.report_line(number, "bad-line", "empty line (one record per line)")
                continue
            verifier.feed_record(number, line)
            if also is not None:
                also(number, line)
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done)
    if progress is not None:
        progress(done)


def export_store(
    url: DatabaseURL, out: str | os.PathLike[str], progress: Progress | None = None
) -> int:
    """Write the export file of section 3: every event's record bytes and a
    newline, in commit order. Atomic: written to a temporary file beside
    ``out``, flushed to disk, then renamed over it. Returns the event count.

    Records are written byte for byte as spliced from the stored state, even
    if damaged; verifying the export then reports the damage.
    """
    target = Path(out)
    count = 0
    with RecordReader(url) as reader:
        fd, temp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent.resolve()
        )
        try:
            with os.fdopen(fd, "wb") as sink:
                for _, aggregate_id, version, event_type, state in _rows(reader):
                    sink.write(splice(aggregate_id, version, event_type, state))
                    sink.write(b"\n")
                    count += 1
                    if progress is not None and count % PROGRESS_EVERY == 0:
                        progress(count)
                sink.flush()
                os.fsync(sink.fileno())
            os.chmod(temp, 0o644)  # an export is meant to be shared
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    _fsync_directory(target.parent.resolve())
    if progress is not None:
        progress(count)
    return count


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); harmless where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


BUNDLE_ENTRIES = "entries.jsonl"
BUNDLE_CHECKPOINTS = "checkpoints"
BUNDLE_POLICY = "policy.txt"


def export_bundle(
    url: DatabaseURL,
    directory: str | os.PathLike[str],
    policy_text: str | None = None,
    progress: Progress | None = None,
) -> int:
    """A self-contained directory an auditor verifies offline: the entries
    (section 3), every signed checkpoint with the cosignatures received
    (``checkpoints/<size>.note``) and, if given, the policy. Returns the
    number of entries."""
    target = Path(directory)
    (target / BUNDLE_CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    count = export_store(url, target / BUNDLE_ENTRIES, progress)
    with RecordReader(url) as reader:
        log = LogStore(reader.recorder, create=False)
        if log.exists():
            for stored in log.checkpoints():
                lines = log.cosignatures(stored.size).values()
                note = stored.note + "".join(line + "\n" for line in lines)
                (target / BUNDLE_CHECKPOINTS / f"{stored.size}.note").write_text(note)
    if policy_text is not None:
        (target / BUNDLE_POLICY).write_text(policy_text)
    return count


def verify_bundle(
    directory: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    log_keys: Sequence[NoteVerifier] = (),
    policy: Policy | None = None,
    remembered: tuple[int, str] | None = None,
    max_unsigned_age: float = UNSIGNED_AGE_DEFAULT,
) -> Report:
    """Verify an exported bundle offline: entries, chains and rules, and every
    checkpoint (root, log signature, and the latest one's quorum). Given a
    log key or a policy (the bundle's own ``policy.txt`` counts), the log
    must be signed, as :func:`verify_store` says."""
    source = Path(directory)
    if policy is None and (source / BUNDLE_POLICY).is_file():
        try:
            policy = parse_policy((source / BUNDLE_POLICY).read_text())
        except (PolicyError, OSError, UnicodeDecodeError) as error:
            raise BundleError(f"{source / BUNDLE_POLICY}: {error}") from None
    signed_asked = bool(log_keys) or policy is not None
    if policy is not None:
        log_keys = [*log_keys, *policy.log_verifiers]
    notes: dict[int, str] = {}
    checkpoints: list[StoredCheckpoint] = []
    for path in sorted((source / BUNDLE_CHECKPOINTS).glob("*.note")):
        try:
            text = path.read_text()
            checkpoint = Checkpoint.parse(parse_note(text).text)
        except (NoteError, OSError, UnicodeDecodeError) as error:
            raise BundleError(f"{path}: {error}") from None
        notes[checkpoint.size] = text
        checkpoints.append(StoredCheckpoint(checkpoint.size, checkpoint.root, text, ""))
    verifier = Verifier()
    auditor = LogAuditor(
        checkpoints, log_keys, remembered=remembered, on_verified=verifier.mark_signed
    )
    _feed_lines(verifier, source / BUNDLE_ENTRIES, progress, auditor.add)
    report = verifier.finish(os.fspath(source / BUNDLE_ENTRIES))
    findings = auditor.finish()
    summary = auditor.summary
    if policy is not None and summary.latest_size:
        findings += _quorum_findings(policy, log_keys, summary, notes[summary.latest_size])
    report.findings.extend(findings)
    report.findings_total += len(findings)
    report.log = summary.to_json()
    if signed_asked:
        _add(report, _signing_findings(verifier, report.events, summary, max_unsigned_age))
    return report


class BundleError(ValueError):
    """A bundle file cannot be read at all."""
