"""A verifier node's logic and its durable state.

The node has its own Ed25519 cosigning key and its own state directory, and
no access to the ledger's database. For each new checkpoint the ledger
shows it, it:

1. checks the log's signature (a key it was told to trust) and the origin;
2. fetches every new entry, hashes each record itself, feeds it to the
   independent rule verifier (:mod:`ledger.verify`), and extends its own
   compact range of the tree;
3. requires the checkpoint's root to equal the root it computed, and no
   rule finding;
4. cosigns (C2SP tlog-cosignature) -- after persisting its new state
   atomically -- and returns the cosignature.

Anything else raises an :class:`Alarm`: the node refuses to cosign from then
on, keeps the evidence in its state, and reports it (log line, HTTP status,
metric), naming the first bad entry with expected and actual hashes.

The state directory holds ``state.json`` (size, root, frontier, latest
cosigned note, the roots it has seen, any alarm), written to a temporary
file, fsynced and renamed; and ``leaves.bin``, the 32-byte leaf hashes it has
verified, appended and fsynced before the state that counts them. On
restart the node re-follows the log from the start and compares every leaf
with ``leaves.bin``: a rewritten entry is caught even after the fact.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.tlog import merkle
from ledger.tlog.c2sp import NoteError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosignature import cosign
from ledger.tlog.keys import Signer, Verifier
from ledger.tlog.signed_note import open_note
from ledger.verify import Verifier as RuleVerifier

logger = logging.getLogger("ledger.verifier")
PAGE = 1_000
REAUDIT_PER_POLL = 256  # old entries re-checked on every poll
UNPROVEN_POLLS_MAX = 30  # polls a peer's newer checkpoint may stay unproven
HISTORY_MAX = 10_000


class Refusal(Exception):  # noqa: N818 - a refusal, with the status a witness answers
    def __init__(self, status: int, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.size = status, message, size


class Alarm(Refusal):
    """The ledger misbehaved: evidence is kept and cosigning stops."""

    def __init__(
        self,
        check: str,
        message: str,
        *,
        index: int | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        # tlog-witness (HEAD) answers 422 to a checkpoint inconsistent with
        # what the witness cosigned, e.g. another root for the same size.
        super().__init__(422, message)
        self.evidence = {
            "check": check,
            "message": message,
            "index": index,
            "expected": expected,
            "actual": actual,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class NodeState:
    origin: str
    size: int = 0
    root: str = ""
    frontier: dict[str, Any] = field(default_factory=lambda: merkle.CompactRange().to_json())
    cosigned: str = ""  # the latest checkpoint note with this node's cosignature
    history: dict[str, str] = field(default_factory=dict)  # size -> root it verified
    alarm: dict[str, Any] | None = None


class VerifierNode:
    def __init__(
        self,
        *,
        ledger_url: str,
        signer: Signer,
        log_keys: list[Verifier],
        origin: str,
        state_dir: Path,
        peers: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger_url = ledger_url.rstrip("/")
        self.signer = signer
        self.log_keys = log_keys
        self.origin = origin
        self.peers = [p.rstrip("/") for p in peers or []]
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.RLock()
        self._http = httpx.Client(timeout=10)
        self.metrics = {"cosigned_total": 0, "alarms_total": 0, "entries_verified_total": 0}
        self.state = self._load_state()
        self._tree = merkle.CompactRange()
        self._rules = RuleVerifier()
        self._reaudit_cursor = 0
        self._unproven: dict[str, int] = {}
        self._reported = 0

    # -- durable state ------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def _leaves_file(self) -> Path:
        return self.dir / "leaves.bin"

    def _load_state(self) -> NodeState:
        if self._state_file.exists():
            data = json.loads(self._state_file.read_text())
            state = NodeState(**data)
            if state.origin != self.origin:
                raise ValueError(f"state is for origin {state.origin!r}, not {self.origin!r}")
            return state
        return NodeState(origin=self.origin)

    def _save_state(self) -> None:
        fd, temp = tempfile.mkstemp(dir=self.dir, prefix=".state.", suffix=".tmp")
        with os.fdopen(fd, "w") as sink:
            json.dump(self.state.__dict__, sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, self._state_file)
        directory = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _raise_alarm(self, alarm: Alarm) -> None:
        logger.error("ALARM %s: %s", alarm.evidence["check"], alarm.evidence["message"])
        self.metrics["alarms_total"] += 1
        if self.state.alarm is None:
            self.state.alarm = alarm.evidence
            self._save_state()
        raise alarm

    # -- following the log --------------------------------------------------
    def _open(self, signed: str) -> Checkpoint:
        return self._open_with_text(signed)[0]

    def _open_with_text(self, signed: str) -> tuple[Checkpoint, str]:
        try:
            note, logs = open_note(signed, self.log_keys)
        except NoteError as error:
            raise Refusal(403, f"the checkpoint's log signature does not verify: {error}") from None
        if not logs:
            raise Refusal(403, "the checkpoint carries no signature of a trusted log key")
        checkpoint = Checkpoint.parse(note.text)
        if checkpoint.origin != self.origin:
            raise Refusal(404, f"unknown origin {checkpoint.origin!r}")
        return checkpoint, note.text

    def _entries(self, start: int, end: int) -> list[dict[str, Any]]:
        response = self._http.get(
            f"{self.ledger_url}/log/entries", params={"start": start, "end": end}
        )
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    def _follow(self, target: int) -> None:
        """Verify entries until the node's tree has ``target`` leaves."""
        with open(self._leaves_file, "ab") as leaves:
            while self._tree.size < target:
                start = self._tree.size
                end = min(start + PAGE, target)
                page = self._entries(start, end)
                if not page:
                    raise Refusal(502, f"the ledger served no entries from {start}")
                known = self._known_leaves(start, end)
                for entry in page:
                    index = self._tree.size
                    if entry["index"] != index:
                        self._raise_alarm(
                            Alarm(
                                "entry-order",
                                f"asked for entry {index}, the ledger served {entry['index']}",
                                index=index,
                            )
                        )
                    record = entry["record"].encode()
                    leaf = merkle.leaf_hash(record)
                    served = base64.b64decode(entry["leaf_hash"])
                    if served != leaf:
                        self._raise_alarm(
                            Alarm(
                                "leaf-hash",
                                f"entry {index}: its record hashes to {b64(leaf)}, the "
                                f"log's tree has {b64(served)}",
                                index=index,
                                expected=b64(leaf),
                                actual=b64(served),
                            )
                        )
                    verified = self._check_known(known, start, index, leaf)
                    self._rules.feed_record(index + 1, record)
                    self._tree.append(leaf)
                    if not verified:
                        leaves.write(leaf)
                    self.metrics["entries_verified_total"] += 1
                    self._check_rules()
            leaves.flush()
            os.fsync(leaves.fileno())

    def _known_leaves(self, start: int, end: int) -> bytes:
        """Leaf hashes ``start <= i < end`` this node verified before (read
        from disk, a page at a time: memory does not grow with the log)."""
        if not self._leaves_file.exists():
            return b""
        with open(self._leaves_file, "rb") as leaves:
            leaves.seek(32 * start)
            return leaves.read(32 * (end - start))

    def _check_known(self, known: bytes, start: int, index: int, leaf: bytes) -> bytes:
        """The leaf hash this node verified at ``index`` before (empty if
        none; ``known`` holds those from ``start``); an alarm if the entry
        hashes differently now."""
        offset = 32 * (index - start)
        verified = known[offset : offset + 32] if offset >= 0 else b""
        if verified and verified != leaf:
            self._raise_alarm(
                Alarm(
                    "history-rewritten",
                    f"entry {index} changed since this node verified it: "
                    f"was {b64(verified)}, now {b64(leaf)}",
                    index=index,
                    expected=b64(verified),
                    actual=b64(leaf),
                )
            )
        return verified

    def _check_rules(self) -> None:
        findings = self._rules.findings_so_far()
        if len(findings) > self._reported:
            first = findings[self._reported]
            self._reported = len(findings)
            index = first.position - 1 if first.position else None
            self._raise_alarm(
                Alarm(
                    f"rule:{first.check}",
                    f"entry {index}: {first.message}",
                    index=index,
                    expected=first.expected,
                    actual=first.actual,
                )
            )

    def replay(self) -> None:
        """After a restart: re-verify everything up to the size last cosigned."""
        with self._lock:
            if self.state.size and self._tree.size < self.state.size:
                self._follow(self.state.size)
                if b64(self._tree.root()) != self.state.root:
                    self._raise_alarm(
                        Alarm(
                            "history-rewritten",
                            f"the tree of the first {self.state.size} entries "
                            "is not the one this node cosigned",
                            expected=self.state.root,
                            actual=b64(self._tree.root()),
                        )
                    )

    def add_checkpoint(self, signed: str) -> str:
        """Verify a signed checkpoint (and everything up to it); return this
        node's cosignature line. Raises :class:`Refusal` or :class:`Alarm`."""
        with self._lock:
            if self.state.alarm is not None:
                raise Refusal(503, f"this node is in alarm: {self.state.alarm['message']}")
            checkpoint, body = self._open_with_text(signed)
            root = b64(checkpoint.root)
            seen = self.state.history.get(str(checkpoint.size))
            if seen is not None and seen != root:
                self._raise_alarm(
                    Alarm(
                        "split-view",
                        f"two roots for size {checkpoint.size}: {seen} (cosigned "
                        f"before) and {root}",
                        expected=seen,
                        actual=root,
                    )
                )
            if checkpoint.size < self.state.size:
                raise Refusal(
                    409,
                    f"this node has cosigned size {self.state.size}; {checkpoint.size} is older",
                    size=self.state.size,
                )
            self.replay()
            self._follow(checkpoint.size)
            mine = self._tree.root() if checkpoint.size else merkle.EMPTY_ROOT
            if mine != checkpoint.root:
                self._raise_alarm(
                    Alarm(
                        "root-mismatch",
                        f"the signed root at size {checkpoint.size} is not the "
                        "root of the entries served",
                        expected=b64(mine),
                        actual=root,
                    )
                )
            signature = cosign(body, self.signer, int(self._clock()))
            line = signature.line()
            self.state.size, self.state.root = checkpoint.size, root
            self.state.frontier = self._tree.to_json()
            self.state.cosigned = signed + line + "\n"
            self.state.history[str(checkpoint.size)] = root
            while len(self.state.history) > HISTORY_MAX:
                self.state.history.pop(next(iter(self.state.history)))
            self._save_state()  # durable before anyone sees the cosignature
            self.metrics["cosigned_total"] += 1
            logger.info("cosigned %s at size %d (root %s)", self.origin, checkpoint.size, root)
            return line

    # -- the loop: pull, cosign, push, compare with peers -----------------------
    def reaudit(self, budget: int = REAUDIT_PER_POLL) -> None:
        """Re-fetch the next ``budget`` old entries (round robin over the
        whole log) and compare each with the leaf hash verified before: a
        running node catches an entry rewritten after it cosigned it."""
        with self._lock:
            size = self._tree.size
            if not size or not self._leaves_file.exists():
                return
            start = self._reaudit_cursor % size
            end = min(start + budget, size)
            self._reaudit_cursor = 0 if end >= size else end
            known = self._known_leaves(start, end)
            for entry in self._entries(start, end):
                index = int(entry["index"])
                self._check_known(known, start, index, merkle.leaf_hash(entry["record"].encode()))

    def poll_once(self) -> None:
        if self.state.alarm is not None:
            return
        response = self._http.get(f"{self.ledger_url}/log/checkpoint")
        if response.status_code != 404 or not self.state.size:
            self.reaudit()  # (after: a ledger that withdrew everything serves no entries)
        if response.status_code == 404:
            if self.state.size and _problem_type(response).endswith("/no-checkpoint"):
                # A ledger never removes a checkpoint: this one's were deleted.
                self._raise_alarm(
                    Alarm(
                        "checkpoint-withdrawn",
                        f"the ledger shows no checkpoint, but this node "
                        f"cosigned its checkpoint of size {self.state.size}: its checkpoints were "
                        "removed",
                        expected=self.state.root,
                    )
                )
            return
        response.raise_for_status()
        signed = _log_part(response.text)
        checkpoint = self._open(signed)
        if checkpoint.size < self.state.size and self.state.cosigned:
            self._raise_alarm(
                Alarm(
                    "rollback",
                    f"the ledger's latest checkpoint is of size {checkpoint.size}, "
                    f"smaller than the size {self.state.size} this node cosigned: its later "
                    "checkpoints were removed or the log was rolled back",
                    expected=str(self.state.size),
                    actual=str(checkpoint.size),
                )
            )
        if checkpoint.size <= self.state.size and self.state.cosigned:
            self.compare_with_peers()
            return
        line = self.add_checkpoint(signed)
        self._http.post(
            f"{self.ledger_url}/log/cosignatures", json={"size": checkpoint.size, "line": line}
        )
        self.compare_with_peers()

    def compare_with_peers(self) -> None:
        """Split-view check: every peer's cosigned tree must be a prefix of
        ours or extend it, as proved by a consistency proof against the two
        roots (which the ledger cannot forge)."""
        for peer in self.peers:
            try:
                response = self._http.get(f"{peer}/checkpoint")
            except httpx.HTTPError:
                continue
            if response.status_code != 200:
                continue
            try:
                theirs = self._open(_log_part(response.text))
            except Refusal:
                continue
            self._check_consistent(theirs, peer)

    def _check_consistent(self, theirs: Checkpoint, peer: str) -> None:
        with self._lock:
            size, root = self.state.size, self.state.root
            if not size or theirs.size == 0:
                return
            if theirs.size == size:
                if b64(theirs.root) != root:
                    self._raise_alarm(
                        Alarm(
                            "split-view",
                            f"peer {peer} cosigned another root at size {size}",
                            expected=root,
                            actual=b64(theirs.root),
                        )
                    )
                return
            old, new = sorted([(size, base64.b64decode(root)), (theirs.size, theirs.root)])
            response = self._http.get(
                f"{self.ledger_url}/log/proof/consistency", params={"old": old[0], "new": new[0]}
            )
            if response.status_code != 200:
                # Perhaps our ledger has not yet shown us the peer's newer
                # checkpoint; a ledger that never proves it is withholding.
                refused = self._unproven.get(peer, 0) + 1
                self._unproven[peer] = refused
                if refused < UNPROVEN_POLLS_MAX:
                    return
                self._raise_alarm(
                    Alarm(
                        "split-view",
                        f"the ledger will not prove that peer {peer}'s checkpoint "
                        f"at size {theirs.size} extends this node's at size {size}",
                        expected=root,
                        actual=b64(theirs.root),
                    )
                )
            self._unproven.pop(peer, None)
            try:
                proof = [base64.b64decode(h) for h in response.json()["proof"]]
                merkle.verify_consistency(old[0], new[0], old[1], new[1], proof)
            except (merkle.ProofError, KeyError, ValueError) as error:
                self._raise_alarm(
                    Alarm(
                        "split-view",
                        f"peer {peer}'s checkpoint at size {theirs.size} is not "
                        f"consistent with this node's at size {size}: {error}",
                        expected=root,
                        actual=b64(theirs.root),
                    )
                )

    def close(self) -> None:
        self._http.close()


def _problem_type(response: httpx.Response) -> str:
    """The ``type`` of an RFC 9457 problem document ("" if it is none)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else ""


def _log_part(note: str) -> str:
    """A note as the log signed it (cosignature lines are re-verified anyway;
    unknown signature lines are ignored by open_note)."""
    return note
