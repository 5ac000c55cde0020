"""What a running server holds: the ledger, its log and the sealer."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.service import Ledger
from ledger.service.sealer import Sealer, SealerThread
from ledger.service.witnessing import WitnessPusher
from ledger.store.logstore import LogStore
from ledger.tlog.policy import Policy


@dataclass
class Runtime:
    ledger: Ledger
    log: LogStore
    sealer: Sealer | None = None
    seal_interval: float = 1.0
    policy: Policy | None = None  # whose cosignatures the ledger accepts
    _thread: SealerThread | None = field(default=None, init=False, repr=False)

    @property
    def origin(self) -> str:
        return self.sealer.origin if self.sealer is not None else ""

    _pusher: WitnessPusher | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        if self.sealer is not None and self._thread is None:
            if self.policy is not None and any(self.policy.witness_urls.values()):
                self._pusher = WitnessPusher(self.log, self.policy)
            on_seal = self._pusher.push if self._pusher is not None else None
            self._thread = SealerThread(self.sealer, self.seal_interval, on_seal=on_seal)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self._pusher is not None:
            self._pusher.close()
            self._pusher = None
