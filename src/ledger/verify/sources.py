"""Where the verifier reads from: the event store (raw rows through
:class:`~ledger.store.records.RecordReader`) or an export file, and the
exporter that writes that file (``docs/format.md`` section 3)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.store.records import RecordReader, StoreMissingError
from ledger.tlog.c2sp import NoteError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Verifier as NoteVerifier
from ledger.tlog.policy import Policy, PolicyError, parse_policy
from ledger.tlog.signed_note import parse_note
from ledger.verify.checkpoints import check_quorum, quorum_findings, read_checkpoints
from ledger.verify.codec import splice
from ledger.verify.log import UNSIGNED_AGE_DEFAULT, LogAuditor, LogSummary
from ledger.verify.pipeline import CHILD_MEMORY, CLEAN, HASH_SIZE, ID_OK, LEAF, Prechecker
from ledger.verify.prooftree import ProofStoreAuditor
from ledger.verify.report import Finding, Report
from ledger.verify.rows import read_rows, record_of, why
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


def verify_store(
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
    stored tree the server proves from is compared with the tree of the
    events in the same pass (:mod:`ledger.verify.prooftree`).

    Given a log key or a policy, the log must be signed: a store with
    events and no checkpoint fails (``no-checkpoint``), and so does an event
    outside every verified checkpoint and more than ``max_unsigned_age``
    seconds older than the newest event (``unsigned-events``).

    ``parallel``: check each event's own bytes in a second process (see
    :func:`_feed_paged`); None (the default) does so for a store of
    :data:`PARALLEL_FROM` events or more on a machine with more than one
    processor. The report is the same either way.
    """
    signed_asked = bool(log_keys) or policy is not None
    if policy is not None:
        log_keys = [*log_keys, *policy.log_verifiers]
    with _open(url) as reader:
        stored = _max_position(reader, url)
        if parallel is None:
            parallel = (os.cpu_count() or 1) > 1 and stored >= PARALLEL_FROM
        # The two processes together stay within one memory budget.
        verifier = Verifier(memory=DEFAULT_BUDGET - CHILD_MEMORY) if parallel else Verifier()
        auditor = _auditor(reader, verifier, log_keys, origin, remembered)
        feed_all = _feed_paged if parallel else _feed_rows
        done, read_all = feed_all(reader, verifier, auditor, progress)
        if read_all and auditor is not None:  # the rows no event reached, while it is open
            auditor.read_the_rest()
    if progress is not None:
        progress(done)
    report = verifier.finish(url.display())
    _add_log_findings(report, auditor, policy, log_keys, url, remembered)
    if signed_asked:
        summary = None if auditor is None else auditor.summary
        why = "the store has no log tables" if auditor is None else ""
        _add(report, _signing_findings(verifier, report.events, summary, max_unsigned_age, why))
    return report


def _max_position(reader: RecordReader, url: DatabaseURL) -> int:
    try:
        return reader.max_position()
    except Exception as error:  # no events table: this is no ledger store
        raise StoreUnreadableError(
            f"cannot read a ledger store at {url.display()}: {why(error)}"
        ) from None


def _auditor(
    reader: RecordReader,
    verifier: Verifier,
    log_keys: Sequence[NoteVerifier],
    origin: str | None,
    remembered: tuple[int, str] | None,
) -> ProofStoreAuditor | None:
    """The log's checkpoints against the events, and the stored tree the
    server proves from against the tree of the events (None: the store has
    no log)."""
    log = LogStore(reader.recorder, create=False)
    checkpoints = read_checkpoints(log)
    if checkpoints is None:
        return None
    stored_checkpoints, unreadable_checkpoints = checkpoints
    auditor = ProofStoreAuditor(
        stored_checkpoints,
        log_keys,
        origin,
        remembered=remembered,
        on_verified=verifier.mark_signed,
        stored=log,
    )
    auditor.findings.extend(unreadable_checkpoints)
    return auditor


Fed = tuple[int, bool]  # rows fed, and whether all were read

# Two reading loops on purpose: folding the one-process case into the paged
# one (a row per page) cost it 11 % (measured on 200,000 events: 43k -> 38k
# events/s).


def _feed_rows(
    reader: RecordReader,
    verifier: Verifier,
    auditor: ProofStoreAuditor | None,
    progress: Progress | None,
) -> Fed:
    """Every stored row to the verifier (and its record to the log's
    auditor), in one process."""
    feed = verifier.feed_stored
    add = None if auditor is None else auditor.add_event
    done = 0
    last: int | None = None
    try:
        for position, aggregate_id, version, event_type, state in read_rows(reader):
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
                    else record_of(aggregate_id, version, event_type, state),
                )
            last = position
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done)
    except _ROW_ERRORS as error:
        _unreadable(verifier, last, error)
        return done, False
    return done, True


def _feed_paged(
    reader: RecordReader,
    verifier: Verifier,
    auditor: ProofStoreAuditor | None,
    progress: Progress | None,
) -> Fed:
    """:func:`_feed_rows`, each page's own bytes checked first in a second
    process (:mod:`ledger.verify.pipeline`): a row it passed, with its
    event hash and leaf, skips those checks here."""
    feed, feed_checked = verifier.feed_stored, verifier.feed_checked
    add = None if auditor is None else auditor.add_event
    add_leaf = None if auditor is None else auditor.add_event_leaf
    done = 0
    last: int | None = None
    checker = Prechecker()
    try:
        for page, found in checker.pages(read_rows(reader), _ROW_ERRORS):
            # found: a flags byte per row, then event hashes, then leaves
            n = len(page)
            result = found or bytes(n)
            for i, row in enumerate(page):
                position, aggregate_id, version, event_type, state = row
                flags = result[i]
                if flags & CLEAN:
                    at = n + i * HASH_SIZE
                    digest = result[at : at + HASH_SIZE]
                    id_ok = bool(flags & ID_OK)
                    feed_checked(position, aggregate_id, version, event_type, state, digest, id_ok)
                    record = None
                else:
                    record = feed(position, aggregate_id, version, event_type, state)
                if add is not None and add_leaf is not None:
                    if flags & LEAF:
                        at = n * (1 + HASH_SIZE) + i * HASH_SIZE
                        add_leaf(position, aggregate_id, version, result[at : at + HASH_SIZE])
                    else:
                        if record is None:
                            record = record_of(aggregate_id, version, event_type, state)
                        add(position, aggregate_id, version, record)
                last = position
                done += 1
                if progress is not None and done % PROGRESS_EVERY == 0:
                    progress(done)
    except _ROW_ERRORS as error:
        _unreadable(verifier, last, error)
        return done, False
    finally:
        checker.close()
    return done, True


def _unreadable(verifier: Verifier, last: int | None, error: BaseException) -> None:
    """The stored rows cannot be read past ``last``: one finding, no traceback."""
    after = "the start" if last is None else f"position {last}"
    verifier.report_unreadable(
        None, f"the stored events cannot be read after {after}: {why(error)}"
    )


def _add_log_findings(
    report: Report,
    auditor: ProofStoreAuditor | None,
    policy: Policy | None,
    log_keys: Sequence[NoteVerifier],
    url: DatabaseURL,
    remembered: tuple[int, str] | None,
) -> None:
    """The log's findings (and its summary) into the report: its audit and
    quorum, or a rollback if a log was verified before and there is none."""
    if auditor is not None:
        findings = auditor.finish()
        summary = auditor.summary
        if policy is not None and summary.latest_size:
            findings += check_quorum(policy, log_keys, summary, url)
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
            f"cannot read a ledger store at {url.display()}: {why(error)}"
        ) from None
    with reader:
        yield reader


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
                for _, aggregate_id, version, event_type, state in read_rows(reader):
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
        findings += quorum_findings(policy, log_keys, summary, notes[summary.latest_size])
    report.findings.extend(findings)
    report.findings_total += len(findings)
    report.log = summary.to_json()
    if signed_asked:
        _add(report, _signing_findings(verifier, report.events, summary, max_unsigned_age))
    return report


class BundleError(ValueError):
    """A bundle file cannot be read at all."""
