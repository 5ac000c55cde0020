"""Opening a store's recorder on its own, for the CLI's work on the tables
beside the events (API keys, the code vault): :class:`ledger.store.dialect.TableStore`
reaches them through its connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.utils import Environment

from ledger.store.database import APPLICATION_NAME, DatabaseURL


@contextmanager
def open_recorder(url: DatabaseURL, *, create: bool) -> Iterator[ApplicationRecorder]:
    """The store's recorder without an application around it, for the CLI's
    work on side tables."""
    env = Environment(APPLICATION_NAME, url.event_store_env(create_tables=create))
    factory: Any = InfrastructureFactory.construct(env)
    try:
        yield factory.application_recorder()
    finally:
        factory.close()
