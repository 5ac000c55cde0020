"""Reading the stored events as raw records, in commit order.

This module knows the event store's rows and nothing of the domain: the
verifier and the exporter read history through it and recompute everything
themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.utils import Environment

from ledger.store.database import APPLICATION_NAME, DatabaseURL


class StoreMissingError(LookupError):
    """There is no event store at the given URL."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    position: int  # the store's notification id: increasing, may have gaps
    aggregate_id: str
    version: int
    event_type: str
    state: bytes


class RecordReader:
    """Streams stored records in position order, a page at a time."""

    def __init__(self, url: DatabaseURL, *, page_size: int = 2_000) -> None:
        if not url.exists():
            raise StoreMissingError(f"no ledger database at {url.display()}")
        env = Environment(APPLICATION_NAME, url.event_store_env(create_tables=False))
        self._factory: Any = InfrastructureFactory.construct(env)
        self._recorder: ApplicationRecorder = self._factory.application_recorder()
        self._page_size = page_size

    @property
    def recorder(self) -> ApplicationRecorder:
        return self._recorder

    def max_position(self) -> int:
        return int(self._recorder.max_notification_id() or 0)

    def __iter__(self) -> Iterator[StoredRecord]:
        start = 1
        while True:
            page = self._recorder.select_notifications(start=start, limit=self._page_size)
            if not page:
                return
            for item in page:
                yield StoredRecord(
                    position=item.id,
                    aggregate_id=str(item.originator_id),
                    version=item.originator_version,
                    event_type=item.topic,
                    state=bytes(item.state),
                )
            start = page[-1].id + 1

    def close(self) -> None:
        self._factory.close()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
