"""The views applied by a child process (ProcessRunner): the same views,
each event once, through a child's death, and errors reported, not hidden."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.domain.errors import SoldOutError
from ledger.domain.money import Money
from ledger.projections import ProjectionStore, Views
from ledger.projections.process import ProcessRunner
from ledger.projections.replay import compare_with_replay
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.strategies import good_spec


def _listen(url: DatabaseURL) -> dict[str, object] | None:
    if url.backend != "postgresql":
        return None
    return {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "password": url.password,
        "dbname": url.dbname,
    }


def _sell(ledger: Ledger, good: str, threads: int, each: int, tag: str) -> None:
    def buy(t: int) -> None:
        for i in range(each):
            try:
                ledger.sell(
                    good,
                    "own",
                    buyer=f"{tag}{t}b{i}",
                    channel="shop",
                    quantity=1,
                    unit_price=Money(10, "EUR"),
                    idempotency_key=f"{tag}{t}s{i}",
                )
            except SoldOutError:
                return

    workers = [threading.Thread(target=buy, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_a_process_runner_keeps_the_views_like_a_thread(store_url: DatabaseURL) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = str(
            ledger.mint(good_spec(tiers=[{"name": "own", "quota": 150}]), idempotency_key="m")[
                "good_id"
            ]
        )
        store = ProjectionStore(ledger.event_store.recorder)
        runner = ProcessRunner(store, store_url, poll_interval=0.01, listen_dsn=_listen(store_url))
        changed: list[set[str]] = []
        runner.subscribe(lambda c: changed.append(set(c.goods)))
        runner.start()
        try:
            _sell(ledger, good, threads=6, each=30, tag="a")
            head = store.store_position()
            assert runner.wait_for(head, timeout=30)
            child = runner._child
            assert child is not None
            assert child.pid != os.getpid()
            assert child.poll() is None  # alive, serving batches
        finally:
            runner.stop()
        assert child.poll() is not None  # stopped with the runner
        own = Views(store).stock(good)[0]
        assert own["issued"] == own["sold_total"] == 150
        assert own["band"] == "sold-out"
        assert store.position().events == head  # each event applied once
        assert compare_with_replay(store).ok
        status = runner.status()
        assert status["behind"] == 0
        assert status["error"] is None
        assert status["lag"]["batches"] >= 1
        assert any(good in goods for goods in changed)


def test_a_killed_views_process_is_replaced_and_nothing_is_applied_twice(
    store_url: DatabaseURL,
) -> None:
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = str(
            ledger.mint(good_spec(tiers=[{"name": "own", "quota": 400}]), idempotency_key="m")[
                "good_id"
            ]
        )
        store = ProjectionStore(ledger.event_store.recorder)
        runner = ProcessRunner(store, store_url, poll_interval=0.01)
        runner.start()
        try:
            _sell(ledger, good, threads=4, each=25, tag="a")
            assert runner.wait_for(store.store_position(), timeout=30)
            first = runner._child
            assert first is not None
            first.kill()  # mid-stream: the next batch finds it gone
            first.wait()
            _sell(ledger, good, threads=4, each=25, tag="b")
            head = store.store_position()
            assert runner.wait_for(head, timeout=30)
            second = runner._child
            assert second is not None
            assert second.pid != first.pid
        finally:
            runner.stop()
        own = Views(store).stock(good)[0]
        assert own["issued"] == own["sold_total"] == 200
        assert store.position().events == head
        assert compare_with_replay(store).ok


def test_a_views_process_that_cannot_start_is_reported(tmp_path: Path) -> None:
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'ledger.db'}")
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        store = ProjectionStore(ledger.event_store.recorder)
        # The child is pointed at a file in a directory that does not exist.
        runner = ProcessRunner(
            store, DatabaseURL.parse(f"sqlite:///{tmp_path}/gone/x.db"), poll_interval=0.01
        )
        runner.start()
        try:
            assert not runner.wait_for(store.store_position(), timeout=1.5)
            error = runner.status()["error"]
            assert error is not None
            assert "views process" in error
        finally:
            runner.stop()
        assert runner._child is None
        assert store.position().events == 0  # nothing half-applied


@pytest.mark.parametrize(
    ("choice", "backend", "expected"),
    [
        ("yes", "sqlite", True),
        ("no", "postgresql", False),
        ("auto", "sqlite", False),
        ("auto", "postgresql", (os.cpu_count() or 1) > 1),
    ],
)
def test_where_the_views_run_is_a_setting(choice: str, backend: str, expected: bool) -> None:
    settings = Settings(projection_process=choice)  # type: ignore[arg-type]
    assert settings.views_in_process(backend) is expected


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="projection_process"):
        Settings(projection_process="sometimes")  # type: ignore[arg-type]
