"""Database outages, on a throwaway PostgreSQL cluster the tests create and
stop themselves (tests/pgcluster.py; never the shared server).

* A real ``ledger serve`` under sales and reads; the cluster is stopped for
  ~12 s and started again. While it is down every answer comes within the
  time bound (``database_timeout``, 3 s by default) and is a 503 problem
  with ``Retry-After``; sales resume within 2 s of the database's return;
  every sale acknowledged (201) is in the store -- the sellers retry a 503
  with the same idempotency key until they get the one answer, so the
  store holds exactly the acknowledged sales -- and ``ledger verify``
  passes.
* ``ledger serve`` started while the database is down listens at once,
  says (in its log, without the password) that it waits for the database,
  answers ``/healthz`` 200 and everything else 503 ``not-ready`` with
  ``Retry-After``, and serves as soon as the database comes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.config import Settings
from ledger.service import Ledger
from ledger.store.postgres import server_reachable
from tests.e2e.conftest import free_port, running_process, running_server
from tests.e2e.test_api_flow import issue
from tests.pgcluster import Cluster, throwaway_cluster
from tests.strategies import good_spec

PROBLEM = "https://ledger.dev/problems/"
BOUND = Settings().database_timeout  # the default time bound
SLACK = 1.5  # a loaded 2-core machine: scheduling, HTTP, the client's own threads
RESUME_WITHIN = 2.0
READS_WITHIN = 10.0  # the views follow the store again (they catch up after the sales;
# not a target of the issue, and on a loaded machine they once took over 4 s)
# (kept short for CI; LEDGER_TEST_OUTAGE_SECONDS=40 repeats the issue's 40 s outage)
OUTAGE_SECONDS = float(os.environ.get("LEDGER_TEST_OUTAGE_SECONDS", "12"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as made:
        yield made


@pytest.fixture
def log_key(tmp_path: Path) -> Path:
    key = tmp_path / "log.key"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "keys",
            "generate",
            "--name",
            "ledger.test/outage",
            "--out",
            str(key),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return key


@dataclass
class Answer:
    kind: str  # "sale" or "read"
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all
    body: dict[str, Any]
    retry_after: str | None


PENDING: dict[str, tuple[str, float]] = {}  # thread -> (kind, started): still unanswered


def _call(http: httpx.Client, kind: str, method: str, path: str, **options: Any) -> Answer:
    started = time.monotonic()
    PENDING[threading.current_thread().name] = (kind, started)
    try:
        response = http.request(method, path, **options)
    except httpx.TransportError as error:
        return Answer(kind, started, time.monotonic(), 0, {"error": repr(error)}, None)
    finally:
        PENDING.pop(threading.current_thread().name, None)
    ended = time.monotonic()
    try:
        body = response.json()
    except ValueError:
        body = {"text": response.text}
    return Answer(
        kind, started, ended, response.status_code, body, response.headers.get("retry-after")
    )


# A read that waits for the views to catch up and cannot (they wait for the
# database too) says so with its own 503 where the server has it.
OUTAGE_TYPES = {PROBLEM + "database-unavailable", PROBLEM + "views-behind"}


def _assert_unavailable(answer: Answer) -> None:
    assert answer.status == 503, answer
    assert answer.body.get("type") in OUTAGE_TYPES, answer
    assert answer.retry_after is not None, answer
    assert answer.retry_after.isdigit(), answer


def test_an_outage_fails_fast_and_recovers_fast(
    cluster: Cluster, tmp_path: Path, log_key: Path
) -> None:
    url = cluster.create_database("outage")
    db = url.display()
    Ledger(url).close()  # the tables, so keys can be issued before serving
    admin_token, shop_token = issue(db, "admin"), issue(db, "channel", "shop")
    log = tmp_path / "server.log"
    with running_server(db, log_key, log_file=log) as base:
        admin = httpx.Client(
            base_url=base, timeout=60, headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert (
            admin.post(
                "/channels",
                json={"channel": "shop", "name": "Shop", "fee_bps": 0},
                headers={"Idempotency-Key": "c"},
            ).status_code
            == 201
        )
        minted = admin.post(
            "/goods",
            json={"spec": good_spec(tiers=[{"name": "own", "quota": 100_000}])},
            headers={"Idempotency-Key": "g"},
        )
        assert minted.status_code == 201, minted.text
        good = minted.json()["good_id"]

        answers: list[Answer] = []
        acknowledged: dict[str, str] = {}  # idempotency key -> unit id
        stop = threading.Event()
        lock = threading.Lock()

        def seller(number: int) -> None:
            http = httpx.Client(
                base_url=base, timeout=60, headers={"Authorization": f"Bearer {shop_token}"}
            )
            sale = 0
            while not stop.is_set():
                sale += 1
                key = f"s{number}-{sale}"
                body = {
                    "buyer": f"b{number}-{sale}",
                    "channel": "shop",
                    "unit_price": {"amount": 100, "currency": "EUR"},
                }
                # The client's side of "nothing acknowledged is lost": a 503
                # is retried with the same key until the one answer comes.
                while True:
                    answer = _call(
                        http,
                        "sale",
                        "POST",
                        f"/goods/{good}/tiers/own/sales",
                        json=body,
                        headers={"Idempotency-Key": key},
                    )
                    with lock:
                        answers.append(answer)
                    if answer.status == 201:
                        with lock:
                            acknowledged[key] = answer.body["units"][0]["unit_id"]
                        break
                    time.sleep(0.1)  # (sooner than Retry-After: to time the recovery)

        def reader() -> None:
            http = httpx.Client(
                base_url=base, timeout=60, headers={"Authorization": f"Bearer {shop_token}"}
            )
            turn = 0
            while not stop.is_set():
                turn += 1
                with lock:
                    units = list(acknowledged.values())[-5:]
                # The ledger's own read, or the views.
                path = f"/units/{units[0]}" if turn % 2 and units else f"/goods/{good}/stock"
                with lock:
                    answers.append(_call(http, "read", "GET", path))
                time.sleep(0.02)

        threads = [
            threading.Thread(target=seller, args=(n,), name=f"seller-{n}", daemon=True)
            for n in range(4)
        ]
        threads += [
            threading.Thread(target=reader, name=f"reader-{n}", daemon=True) for n in range(2)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(2.0)
            down_at = time.monotonic()
            cluster.stop()
            stopped_at = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            scraped = httpx.get(f"{base}/metrics", timeout=BOUND + SLACK)  # during the outage
            cluster.start()
            back_at = time.monotonic()
            time.sleep(4.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        # A request still unanswered counts as answered now, with no status.
        answers += [
            Answer(kind, started, time.monotonic(), -1, {}, None)
            for kind, started in list(PENDING.values())
        ]

        # The figures first (they are the point, also when an assertion fails).
        before = [a for a in answers if a.ended < down_at]
        during = [a for a in answers if a.ended > stopped_at and a.started < back_at]
        # (a request still unanswered when the load stopped counts as ending then)
        slowest = max((a.ended - a.started for a in during), default=float("inf"))
        statuses = Counter(
            (a.kind, a.status, a.body.get("type", "")[len(PROBLEM) :]) for a in during
        )
        resumed = min(
            (
                a.ended
                for a in answers
                if a.kind == "sale" and a.status == 201 and a.ended > back_at
            ),
            default=float("inf"),
        )
        last_failed_read = max(
            (a.ended for a in answers if a.kind == "read" and a.status not in (200, 201)),
            default=back_at,
        )
        figures = (
            f"outage {back_at - stopped_at:.1f} s: {len(during)} answers "
            f"{dict(statuses)}, slowest {slowest:.2f} s; sales resumed "
            f"{resumed - back_at:.2f} s after the database, reads "
            f"{max(0.0, last_failed_read - back_at):.2f} s after; {len(acknowledged)} "
            "sales acknowledged"
        )
        print(figures)

        # Before the outage: sales went through.
        assert sum(a.status == 201 for a in before if a.kind == "sale") > 10, figures
        # During it: every answer within the bound, and every failure a 503
        # database-unavailable (or views-behind) problem with Retry-After.
        assert slowest <= BOUND + SLACK, figures
        assert len(during) > 20, figures
        for answer in during:
            if answer.status not in (200, 201):
                _assert_unavailable(answer)
        assert sum(a.status == 503 for a in during if a.kind == "sale") > 10, figures
        assert sum(a.status == 503 for a in during if a.kind == "read") > 10, figures
        # After it: sales resume within 2 s and never fail again.
        assert resumed - back_at <= RESUME_WITHIN, figures
        after = [a for a in answers if a.started > resumed]
        assert after
        assert all(a.status == 201 for a in after if a.kind == "sale"), figures
        assert not any(thread.is_alive() for thread in threads)
        # /metrics answered during the outage (what the database must answer
        # left out), and counted the sales it refused.
        assert scraped.status_code == 200, scraped.text
        assert 'ledger_ready{part="database"} 0.0' in scraped.text
        assert 'ledger_commands_total{command="sell",outcome="database-unavailable"}' in (
            scraped.text
        )

    # Every acknowledged sale is in the store, exactly once; nothing else was sold.
    with Ledger(url) as ledger:
        for unit_id in acknowledged.values():
            assert ledger.unit(unit_id).holder is not None
        assert ledger.stock(good, "own").issued == len(acknowledged), figures
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "verify", "--db", db],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The server said what happened, once, in one line each way.
    text = log.read_text()
    assert "is unavailable" in text, text[-3000:]
    assert "answers again" in text, text[-3000:]
    # Reads after it: a unit may still find the views catching up for a
    # moment (a 503, never a 404), then everything answers.
    for answer in after:
        if answer.status not in (200, 201):
            _assert_unavailable(answer)
    assert all(a.status == 200 for a in after if a.started > back_at + READS_WITHIN), figures


def test_serve_started_while_the_database_is_down_waits_for_it(
    cluster: Cluster, tmp_path: Path, log_key: Path
) -> None:
    cluster.create_database("starting")
    db = f"postgresql://postgres:s3cret-pw@127.0.0.1:{cluster.port}/starting"  # (trust auth)
    cluster.stop()
    log = tmp_path / "server.log"
    port = free_port()
    env = os.environ | {"LEDGER_SEAL_INTERVAL": "0.2"}
    started = time.monotonic()
    try:
        with running_process(
            ["serve", "--db", db, "--port", str(port), "--log-key", str(log_key)],
            f"http://127.0.0.1:{port}",
            "/healthz",
            env=env,
            log_file=log,
        ) as base:
            listening = time.monotonic() - started
            http = httpx.Client(base_url=base, timeout=30)
            health = http.get("/healthz")
            assert health.status_code == 200, health.text
            assert health.json()["status"] == "ok"
            for method, path in (
                ("GET", "/readyz"),
                ("GET", "/log/checkpoint"),
                ("GET", "/me"),
                ("POST", "/channels"),
            ):
                answer = http.request(method, path, json={} if method == "POST" else None)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["type"] == PROBLEM + "not-ready", answer.text
                assert answer.headers["retry-after"].isdigit(), path
            assert http.get("/readyz").json()["database"] is False
            # It says what it waits for: the URL, not the password.
            deadline = time.monotonic() + 10
            while "waiting for the database" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            text = log.read_text()
            assert (
                f"waiting for the database at postgresql://postgres@127.0.0.1:"
                f"{cluster.port}/starting" in text
            ), text
            assert "s3cret-pw" not in text

            cluster.start()
            back_at = time.monotonic()
            while True:
                ready = http.get("/readyz")
                if ready.status_code == 200:
                    break
                assert ready.status_code == 503
                assert "retry-after" in ready.headers
                assert time.monotonic() - back_at < 15, ready.text
                time.sleep(0.05)
            ready_after = time.monotonic() - back_at
            assert ready.json() == {
                "status": "ready",
                "database": True,
                "views": True,
                "sealer": True,
            }
            token = issue(db, "admin")
            answer = http.post(
                "/channels",
                json={"channel": "shop", "name": "Shop", "fee_bps": 0},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k"},
            )
            assert answer.status_code == 201, answer.text
            print(
                f"listening after {listening:.2f} s; ready {ready_after:.2f} s after the "
                "database started"
            )
            assert listening < 15
            assert ready_after < 10
    finally:
        if server_reachable(cluster.url("postgres")) is not None:
            cluster.start()  # for whatever runs next on this cluster


def test_serve_on_sqlite_is_ready_at_once(tmp_path: Path, log_key: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with running_server(db, log_key) as base:  # (it waits for /readyz to say 200)
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.json() == {"status": "ready", "database": True, "views": True, "sealer": True}
        assert httpx.get(f"{base}/healthz", timeout=30).json()["status"] == "ok"


def test_serve_refuses_a_sqlite_file_it_cannot_open(tmp_path: Path, log_key: Path) -> None:
    db = f"sqlite:///{tmp_path / 'no-such-directory' / 'ledger.db'}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.cli",
            "serve",
            "--db",
            db,
            "--port",
            str(free_port()),
            "--log-key",
            str(log_key),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: cannot open {db}: unable to open database file"], (
        done.stderr
    )
