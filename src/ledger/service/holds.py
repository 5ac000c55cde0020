"""The hold sweeper: records the expiry of holds whose time is up.

A hold's units return to stock when its ``stock.hold-released`` (expired)
is recorded. Commands on a tier do not wait for the sweeper -- a payment
for a hold whose time is up follows the late rule whether or not its
expiry was recorded -- but sales and new holds see the units as reserved
until it is, so the sweeper runs every ``interval`` seconds (default 1).
Several sweepers (several API processes) may race: the stock's version
makes each expiry happen once, and the loser finds nothing due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from ledger.domain.actor import acting
from ledger.domain.errors import LedgerError
from ledger.service.ledger import Ledger, utc_now
from ledger.store.availability import unavailable_reason

logger = logging.getLogger("ledger.holds")
DueHolds = Callable[[datetime], list[tuple[str, str]]]  # now -> [(good_id, tier)]


def sweep(ledger: Ledger, due: DueHolds, now: datetime | None = None) -> int:
    """Expire every due hold once; returns how many were expired."""
    expired = 0
    with acting(ledger.server_actor()):  # one request id per sweep
        for good_id, tier in due(now or utc_now()):
            try:
                expired += len(ledger.expire_holds(good_id, tier))
            except LedgerError:  # contention outlasted retries: the next sweep retries
                logger.warning(
                    "could not expire holds of %s/%s; will retry", good_id, tier, exc_info=True
                )
    return expired


class HoldSweeper(threading.Thread):
    def __init__(self, ledger: Ledger, due: DueHolds, interval: float = 1.0) -> None:
        super().__init__(name="ledger-hold-sweeper", daemon=True)
        self._ledger, self._due, self._interval = ledger, due, interval
        self._stop_event = threading.Event()
        self.expired = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.expired += sweep(self._ledger, self._due)
            except Exception as error:  # keep sweeping; log it, keep it for the owner
                reason = unavailable_reason(error)
                if reason is None:
                    logger.exception("sweeping holds failed; retrying in %.1f s", self._interval)
                elif self.error is None:  # once per outage, without a traceback
                    logger.warning("sweeping holds waits for the database (%s)", reason)
                self.error = error
            else:
                self.error = None
            self._stop_event.wait(self._interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
