"""Pushing each new checkpoint to the verifiers the policy names, as a C2SP
tlog-witness client: ``POST <url>/add-checkpoint`` with the size the
verifier last cosigned, a consistency proof from it, and the signed
checkpoint. A 409 answer carries the verifier's real size; the push is
retried once from there. Cosignatures that come back are checked against
the policy's key for that verifier before they are stored and served.

Verifier nodes also pull on their own; pushing just makes the quorum come
sooner. The last push to each verifier, and what came of it, is kept in
memory (:meth:`WitnessPusher.last_pushes`, for ``GET /witnesses`` and the
alarms; a restart forgets it, the cosignatures stay stored).
"""

from __future__ import annotations

import logging
import threading

import httpx

from ledger.domain.alarms import Push
from ledger.domain.model import format_timestamp
from ledger.service.ledger import utc_now
from ledger.service.proofs import CheckedProofs, ProofStoreError
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.tlog import merkle
from ledger.tlog.c2sp import NoteError
from ledger.tlog.cosignature import verify_cosignature
from ledger.tlog.keys import NoteSignature
from ledger.tlog.policy import Policy
from ledger.tlog.signed_note import parse_note
from ledger.tlog.witness import format_add_checkpoint

logger = logging.getLogger("ledger.witnessing")


class WitnessPusher:
    def __init__(
        self,
        log: LogStore,
        policy: Policy,
        *,
        timeout: float = 5.0,
        proofs: CheckedProofs | None = None,
    ) -> None:
        """``proofs`` verifies each consistency proof against the checkpoint
        before it is pushed (one that does not verify is never sent)."""
        self._log = log
        self._proofs = proofs
        self._policy = policy
        self._http = httpx.Client(timeout=timeout)
        self._sizes: dict[str, int] = {}  # what each verifier last cosigned, as we know it
        self._pushes: dict[str, Push] = {}  # the last push to each verifier, and its outcome
        self._lock = threading.Lock()

    def last_pushes(self) -> dict[str, Push]:
        """Verifier name -> the last push to it and what came of it."""
        with self._lock:
            return dict(self._pushes)

    def _record(self, name: str, size: int, outcome: str, detail: str = "") -> None:
        with self._lock:
            self._pushes[name] = Push(size, utc_now(), outcome, detail)

    def push(self, checkpoint: StoredCheckpoint) -> dict[str, bool]:
        """Offer ``checkpoint`` to every verifier with a URL; which cosigned."""
        return {
            name: self._push_one(name, url, checkpoint)
            for name, url in self._policy.witness_urls.items()
            if url
        }

    def _push_one(self, name: str, url: str, checkpoint: StoredCheckpoint) -> bool:
        old = self._sizes.get(name, 0)
        for _ in range(2):
            if old >= checkpoint.size:
                return False
            try:
                proof = self._consistency(old, checkpoint)
            except ProofStoreError as error:
                self._record(name, checkpoint.size, "not-sent", str(error))
                return False  # logged as an ERROR where it was found; never pushed
            body = format_add_checkpoint(old, proof, checkpoint.note)
            try:
                response = self._http.post(f"{url.rstrip('/')}/add-checkpoint", content=body)
            except httpx.HTTPError as error:
                logger.warning("verifier %s unreachable: %s", name, error)
                self._record(name, checkpoint.size, "unreachable", type(error).__name__)
                return False
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                "text/x.tlog.size"
            ):
                old = int(response.text.strip() or 0)
                self._sizes[name] = old
                continue
            if response.status_code != 200:
                logger.warning(
                    "verifier %s refused size %d: %s %s",
                    name,
                    checkpoint.size,
                    response.status_code,
                    response.text.strip()[:200],
                )
                detail = f"HTTP {response.status_code} {response.text.strip()[:200]}".strip()
                self._record(name, checkpoint.size, "refused", detail)
                return False
            stored = self._store(name, checkpoint, response.text)
            if stored:
                self._record(name, checkpoint.size, "cosigned")
            else:
                self._record(name, checkpoint.size, "bad-cosignature", "no valid cosignature")
            return stored
        return False

    def _consistency(self, old: int, checkpoint: StoredCheckpoint) -> list[bytes]:
        if not old:
            return []
        if self._proofs is None:
            return merkle.consistency_proof(old, checkpoint.size, self._log)
        return self._proofs.consistency(old, checkpoint.size, checkpoint).proof

    def _store(self, name: str, checkpoint: StoredCheckpoint, answer: str) -> bool:
        witness = self._policy.witnesses[name]
        body = parse_note(checkpoint.note).text
        stored = False
        for line in answer.splitlines():
            if not line.strip():
                continue
            try:
                signature = NoteSignature.parse_line(line)
                if signature.name != name or signature.key_id != witness.key_id:
                    continue
                verify_cosignature(body, signature, witness)
            except NoteError as error:
                logger.warning("verifier %s sent a bad cosignature: %s", name, error)
                continue
            self._log.add_cosignature(checkpoint.size, name, line, format_timestamp(utc_now()))
            self._sizes[name] = checkpoint.size
            stored = True
        return stored

    def close(self) -> None:
        self._http.close()
