"""The event store's contract, on both real backends (SQLite and PostgreSQL).

What the rest of the ledger relies on from :class:`ledger.store.eventstore.EventStore`:

* a batch is atomic: if one event conflicts, none of the batch is stored;
* ``existing`` answers for any number of ids (SQLite asks in chunks of 500);
* ``fast_forward`` of a stored copy equals a fresh ``load``, also after
  another event store on the same database wrote;
* notification ids follow commit order: a reader never sees an id appear
  below one it has already seen, even with concurrent writers.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.model import Aggregate, Event
from ledger.domain.stock import BuyerAllowance, TierStock
from ledger.store.database import DatabaseURL
from ledger.store.eventstore import EventStore, IntegrityError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# One event store per test, many examples against it: fresh ids keep them apart.
per_store = settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def store(store_url: DatabaseURL) -> Iterator[EventStore]:
    es = EventStore(store_url)
    yield es
    es.close()


def allowance(counts: list[int] = []) -> BuyerAllowance:  # noqa: B006 - never mutated
    """A new aggregate (a buyer allowance of a made-up tier) with ``counts`` applied."""
    stock = cast(TierStock, SimpleNamespace(id=uuid.uuid4()))
    agg = BuyerAllowance.start(stock, "buyer", NOW)
    for i, delta in enumerate(counts):
        agg.count(delta, f"ref-{i}", NOW)
    return agg


def state(agg: Aggregate) -> dict[str, Any]:
    """Everything an aggregate holds, pending events aside."""
    return {k: v for k, v in vars(agg).items() if k != "_pending"}


def test_existing_of_nothing(store: EventStore) -> None:
    assert store.existing([]) == set()


@per_store
@given(size=st.integers(1, 12), at=st.integers(0, 12), data=st.data())
def test_a_batch_with_one_conflict_stores_none_of_it(
    store: EventStore, size: int, at: int, data: st.DataObject
) -> None:
    taken = allowance([1])
    store.append(taken.collect_events())
    stale = cast(BuyerAllowance, store.load(taken.id))  # version 2
    rival = cast(BuyerAllowance, store.load(taken.id))
    rival.count(2, "rival", NOW)
    store.append(rival.collect_events())  # takes version 3 ...
    stale.count(5, "late", NOW)  # ... which this event claims too
    conflict = stale.collect_events()
    fresh = [allowance(data.draw(st.lists(st.integers(1, 3), max_size=2))) for _ in range(size)]
    batch: list[Event] = [e for agg in fresh for e in agg.collect_events()]
    batch[min(at, len(batch)) : min(at, len(batch))] = conflict

    with pytest.raises(IntegrityError):
        store.append(batch)

    assert store.existing([agg.id for agg in fresh]) == set()
    assert state(EventStore(store.url).load(taken.id)) == state(store.load(taken.id))
    assert store.load(taken.id).version == 3
    assert cast(BuyerAllowance, store.load(taken.id)).bought == 3


@pytest.fixture
def stored_ids(store: EventStore) -> list[uuid.UUID]:
    """1,203 stored aggregates: more than two SQLite chunks of 500."""
    aggs = [allowance() for _ in range(1203)]
    store.append([e for agg in aggs for e in agg.collect_events()])
    return [agg.id for agg in aggs]


@per_store
@given(data=st.data())
def test_existing_beyond_500_ids(
    store: EventStore, stored_ids: list[uuid.UUID], data: st.DataObject
) -> None:
    known = data.draw(st.lists(st.sampled_from(stored_ids), max_size=1300))
    unknown = [uuid.uuid4() for _ in range(data.draw(st.integers(0, 700)))]
    asked = data.draw(st.permutations(known + unknown))
    assert store.existing(asked) == set(known)


def test_existing_of_all_stored_ids(store: EventStore, stored_ids: list[uuid.UUID]) -> None:
    assert store.existing(stored_ids) == set(stored_ids)
    assert store.existing([*stored_ids[:499], uuid.uuid4(), stored_ids[-1]]) == {
        *stored_ids[:499],
        stored_ids[-1],
    }


@per_store
@given(
    mine=st.lists(st.integers(1, 5), max_size=4),
    theirs=st.lists(st.lists(st.integers(1, 5), max_size=4), min_size=1, max_size=3),
)
def test_fast_forward_equals_load(
    store: EventStore, mine: list[int], theirs: list[list[int]]
) -> None:
    agg = allowance(mine)
    store.append(agg.collect_events())
    copy = store.load(agg.id)  # this store's cached, private copy
    other = EventStore(store.url)  # another writer on the same database
    try:
        for round_no, deltas in enumerate(theirs):
            theirs_now = cast(BuyerAllowance, other.load(agg.id))
            for delta in deltas:
                theirs_now.count(delta, f"other-{round_no}", NOW)
            other.append(theirs_now.collect_events())
            fresh = EventStore(store.url)
            try:
                expected = state(fresh.load(agg.id))
            finally:
                fresh.close()
            assert state(store.fast_forward(copy)) == expected
            assert state(store.load(agg.id)) == expected  # the cache fast-forwards too
            assert store.is_current(agg.id, expected["_version"])
    finally:
        other.close()


def test_notification_ids_follow_commit_order(store: EventStore) -> None:
    writers, batches = 3, 25
    stop = threading.Event()
    seen: list[list[int]] = []
    failures: list[BaseException] = []
    committed: dict[int, list[list[uuid.UUID]]] = {w: [] for w in range(writers)}

    def write(w: int) -> None:
        es = EventStore(store.url)
        try:
            for b in range(batches):
                aggs = [allowance([1] * (b % 3)) for _ in range(1 + b % 4)]
                es.append([e for agg in aggs for e in agg.collect_events()])
                committed[w].append([agg.id for agg in aggs])
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            es.close()

    def read() -> None:
        es = EventStore(store.url)
        try:
            while not stop.is_set():
                seen.append([n.id for n in es.recorder.select_notifications(start=1, limit=10**6)])
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            es.close()

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    reader.join()
    assert not failures, failures
    assert len(seen) > 1  # the reader looked while the writers wrote

    final = list(store.recorder.select_notifications(start=1, limit=10**6))
    ids = [n.id for n in final]
    assert ids == sorted(ids)
    # Every snapshot a reader took is a prefix of the final order: no id ever
    # appeared below one already seen (which a follower would have skipped).
    for snapshot in seen:
        assert snapshot == ids[: len(snapshot)]
    # Each writer's batches, committed one after the other, have increasing ids.
    first_id = {(str(n.originator_id), n.originator_version): n.id for n in final}
    for w, done in committed.items():
        batch_ids = [[first_id[(str(agg_id), 1)] for agg_id in batch] for batch in done]
        assert len(done) == batches, w
        for earlier, later in itertools.pairwise(batch_ids):
            assert max(earlier) < min(later)
