"""The log's stored checkpoints, each row judged as it is, and the latest
checkpoint's quorum of cosignatures under a policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.store.records import RecordReader
from ledger.tlog.c2sp import NoteError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Verifier as NoteVerifier
from ledger.tlog.policy import Policy
from ledger.tlog.signed_note import parse_note
from ledger.verify.log import LogSummary
from ledger.verify.report import Finding
from ledger.verify.rows import why


def read_checkpoints(log: LogStore) -> tuple[list[StoredCheckpoint], list[Finding]] | None:
    """The stored checkpoints (None: the store has no log), each row judged
    as it is (:func:`_checkpoint_row`)."""
    try:
        rows = log.checkpoint_rows()
    except Exception:  # no such table, or a value the driver cannot decode
        found = log.checkpoint_rows_as_stored()
        if found is None:  # no such table: the store predates the log
            return None
        rows = found
    checkpoints: list[StoredCheckpoint] = []
    findings: list[Finding] = []
    for size, root, note, signed_at in rows:
        checkpoint, finding = _checkpoint_row(size, root, note, signed_at)
        if finding is not None:
            findings.append(finding)
        if checkpoint is not None:
            checkpoints.append(checkpoint)
    return checkpoints, findings


def _checkpoint_row(
    size: Any, root: Any, note: Any, signed_at: Any
) -> tuple[StoredCheckpoint | None, Finding | None]:
    """A stored checkpoint row: a row whose columns are not of their types
    is reported (``checkpoint-mismatch``, or ``checkpoint-signature`` if its
    note is no text) and audited by what its signed note says, if it says
    anything."""
    where = f"tlog_checkpoints row of size {size!r}"
    if not isinstance(note, str):
        return None, _log_finding(
            "checkpoint-signature", f"{where}: its note is {type(note).__name__}, not text"
        )
    size_ok = type(size) is int and 0 <= size <= _MAX_SIZE
    root_ok = isinstance(root, (bytes, bytearray, memoryview))
    if size_ok and root_ok:
        return StoredCheckpoint(size, bytes(root), note, str(signed_at)), None
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
        return None, _log_finding(
            "checkpoint-signature", f"{where}: {what}, and its note does not parse ({error})"
        )
    return StoredCheckpoint(signed.size, signed.root, note, str(signed_at)), _log_finding(
        "checkpoint-mismatch",
        f"{where}: {what}; audited as its signed note says (size {signed.size})",
    )


def _log_finding(check: str, message: str) -> Finding:
    """A finding about the log as a whole (no event's)."""
    return Finding(None, None, None, None, check, message)


_MAX_SIZE = 2**63 - 1


def check_quorum(
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
                f"read from tlog_cosignatures ({why(error)})",
            )
        ]
    note = summary.latest_note + "".join(line + "\n" for line in lines.values())
    return quorum_findings(policy, log_keys, summary, note)


def quorum_findings(
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
