"""The sequencer and sealer of the global log.

``sequence()`` appends every stored event not yet in the tree as the next
leaf, in commit order (leaf data = the event's record bytes, docs/format.md
§2). ``seal()`` then signs a C2SP checkpoint of the tree when it has grown.
A server runs ``seal()`` every ``interval`` seconds (default 1 s), so every
acknowledged event is under a signed checkpoint within about that long.

Several processes may run sealers against one database: the log store lets
one sequencer append at a time, and a checkpoint for a size that another
sealer signed first is simply not stored twice (both sign the same root).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from ledger.domain.model import format_timestamp, record_bytes
from ledger.service.ledger import utc_now
from ledger.store.availability import unavailable_reason
from ledger.store.eventstore import EventStore
from ledger.store.logstore import LogStore, StoredCheckpoint
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.keys import Signer, Verifier
from ledger.tlog.signed_note import sign_note

SEQUENCE_BATCH = 5_000
logger = logging.getLogger("ledger.sealer")


class Sealer:
    def __init__(
        self,
        store: EventStore,
        log: LogStore,
        *,
        origin: str,
        signers: Sequence[Signer],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not signers:
            raise ValueError("a sealer needs at least one log key")
        self._store = store
        self._log = log
        self.origin = origin
        self._signers = list(signers)
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def verifiers(self) -> list[Verifier]:
        """The public keys of the log's signers (what a policy's ``log`` lines name)."""
        return [signer.verifier() for signer in self._signers]

    def _read_new(self, last_position: int, limit: int) -> list[tuple[int, str, int, bytes]]:
        page = self._store.recorder.select_notifications(start=last_position + 1, limit=limit)
        return [
            (
                n.id,
                str(n.originator_id),
                n.originator_version,
                merkle.leaf_hash(
                    record_bytes(
                        str(n.originator_id), n.originator_version, n.topic, bytes(n.state)
                    )
                ),
            )
            for n in page
        ]

    def sequence(self) -> int:
        """Append all unsequenced events; returns the tree size."""
        with self._lock:
            while self._log.append(self._read_new, SEQUENCE_BATCH) == SEQUENCE_BATCH:
                pass
            return self._log.size()

    def seal(self) -> StoredCheckpoint | None:
        """Sequence, then sign a checkpoint if the tree grew. Returns the new
        checkpoint, or None if the latest one already covers the tree."""
        size = self.sequence()
        with self._lock:
            latest = self._log.latest_checkpoint()
            if latest is not None and latest.size >= size:
                return None
            if size == 0:
                return None
            root = merkle.root(size, self._log)
            body = Checkpoint(self.origin, size, root).body()
            note = sign_note(body, self._signers)
            self._log.add_checkpoint(size, root, note, format_timestamp(self._clock()))
            return self._log.checkpoint(size)


class SealerThread(threading.Thread):
    """Runs ``seal()`` every ``interval`` seconds until stopped."""

    def __init__(
        self,
        sealer: Sealer,
        interval: float = 1.0,
        on_seal: Callable[[StoredCheckpoint], object] | None = None,
    ) -> None:
        super().__init__(name="ledger-sealer", daemon=True)
        self._sealer = sealer
        self._interval = interval
        self._on_seal = on_seal
        self._stop_event = threading.Event()
        self.error: BaseException | None = None  # of the last round (None: it sealed)
        self.sealed_once = threading.Event()  # a round has succeeded (readiness)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                sealed = self._sealer.seal()
                if sealed is not None and self._on_seal is not None:
                    self._on_seal(sealed)
            except Exception as error:  # keep sealing; log it, keep it for the owner
                reason = unavailable_reason(error)
                if reason is None:
                    logger.exception("sealing failed; retrying in %.1f s", self._interval)
                elif self.error is None:  # once per outage, without a traceback
                    logger.warning("sealing waits for the database (%s)", reason)
                self.error = error
            else:
                self.error = None
                self.sealed_once.set()
            self._stop_event.wait(self._interval)

    @property
    def ready(self) -> bool:
        """Whether the last round sealed (or found nothing to seal)."""
        return self.sealed_once.is_set() and self.error is None

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
