"""API keys on both backends: issued once, stored hashed, revoked at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.store.apikeys import CACHE_SECONDS, ApiKeyStore, Role, check_grant, open_api_keys
from ledger.store.database import APPLICATION_NAME, DatabaseURL


@pytest.fixture
def keys(store_url: DatabaseURL) -> Iterator[ApiKeyStore]:
    with open_api_keys(store_url, create=True) as store:
        yield store


def test_issue_authenticate_revoke(keys: ApiKeyStore) -> None:
    who, token = keys.issue(Role.CHANNEL, "shop", label="till 1")
    assert token.startswith(f"lk_{who.key_id}_")
    found = keys.authenticate(token)
    assert found == who
    assert found.role is Role.CHANNEL
    assert found.subject == "shop"
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert keys.authenticate(wrong) is None
    assert keys.revoke(who.key_id)
    assert keys.authenticate(token) is None  # at once, cache or not
    assert not keys.revoke(who.key_id)
    assert not keys.revoke("000000000000")
    listed = keys.list()
    assert [(k["key_id"], k["role"], k["subject"], k["label"]) for k in listed] == [
        (who.key_id, "channel", "shop", "till 1")
    ]
    assert listed[0]["revoked_at"] is not None
    assert "secret_hash" not in listed[0]


def test_the_secret_is_not_stored(keys: ApiKeyStore, store_url: DatabaseURL) -> None:
    who, token = keys.issue(Role.ADMIN)
    # (the secret is base64url, which may itself hold "_": cut at the key id)
    secret = token.removeprefix(f"lk_{who.key_id}_")
    assert len(secret) == 43
    if store_url.backend == "sqlite":
        for path in Path(store_url.path).parent.glob(Path(store_url.path).name + "*"):
            assert secret.encode() not in path.read_bytes()
    else:
        with psycopg.connect(
            host=store_url.host, port=store_url.port, user=store_url.user, dbname=store_url.dbname
        ) as connection:
            rows = connection.execute(
                f'SELECT * FROM "{store_url.schema}".ledger_api_keys'
            ).fetchall()
        assert rows
        assert secret not in repr(rows)


TOKEN_LIKE = st.from_regex(r"lk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", fullmatch=True)


def test_garbage_never_authenticates_nor_raises(keys: ApiKeyStore) -> None:
    who, token = keys.issue(Role.ADMIN)
    prefix = f"lk_{who.key_id}_"

    @settings(max_examples=200)
    @given(
        garbage=st.text(max_size=80)
        | TOKEN_LIKE
        | st.builds(
            # the real key id with another secret, and near misses of the real token
            lambda s, cut: (prefix + s, token[:cut] + s)[len(s) % 2],
            st.text(max_size=60),
            st.integers(0, len(token)),
        )
    )
    def check(garbage: str) -> None:
        if garbage != token:
            assert keys.authenticate(garbage) is None

    check()
    for thing in (None, b"lk_", 42, token + "\n", token + "\x00", " " + token, token.upper()):
        assert keys.authenticate(thing) is None  # type: ignore[arg-type]
    assert keys.authenticate(token) == who
    for key_id in ("", "\x00", who.key_id.upper(), who.key_id + "0", "x" * 10_000):
        assert keys.revoke(key_id) is False
    assert keys.authenticate(token) == who


def test_bad_grants_store_nothing(keys: ApiKeyStore) -> None:
    refused: list[tuple[Any, str | None, str]] = [
        ("root", None, ""),
        (Role.CREATOR, None, ""),
        (Role.CREATOR, "", ""),
        (Role.CHANNEL, "-shop", ""),
        (Role.CHANNEL, "shop/1", ""),
        (Role.CHANNEL, "shop\n", ""),
        (Role.CHANNEL, "s" * 129, ""),
        (Role.ADMIN, "alice", ""),
        (Role.VERIFIER, "", ""),
        (Role.AUDITOR, None, "x" * 201),
    ]
    for role, subject, label in refused:
        with pytest.raises(ValueError, match=r"^[^\n]+$"):
            keys.issue(role, subject, label)
    assert keys.list() == []
    longest, _ = keys.issue(Role.CHANNEL, "s" * 128, "x" * 200)
    odd, _ = keys.issue("creator", "a1_.:@-Z")
    assert (longest.subject, odd.role, odd.subject) == ("s" * 128, Role.CREATOR, "a1_.:@-Z")
    assert {k["key_id"] for k in keys.list()} == {longest.key_id, odd.key_id}


def _store(url: DatabaseURL, stack: ExitStack, **options: Any) -> ApiKeyStore:
    """A store with its own connections, as another process would have."""
    env = Environment(APPLICATION_NAME, url.event_store_env(create_tables=True))
    factory: Any = InfrastructureFactory.construct(env)
    stack.callback(factory.close)
    return ApiKeyStore(factory.application_recorder(), **options)


def test_the_cache_lasts_seconds_and_revoking_here_clears_it(store_url: DatabaseURL) -> None:
    now = [1_000.0]
    with ExitStack() as stack:
        server = _store(store_url, stack, clock=lambda: now[0])
        operator = _store(store_url, stack)
        who, token = operator.issue(Role.CHANNEL, "shop")
        assert server.remembered(token) is None  # never seen: only authenticate knows
        assert server.authenticate(token) == who
        assert server.remembered(token) == who
        assert server.remembered(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert operator.revoke(who.key_id)  # elsewhere: this server learns within the TTL
        now[0] += CACHE_SECONDS - 0.1
        assert server.remembered(token) == who
        assert server.authenticate(token) == who
        now[0] += 0.2
        assert server.remembered(token) is None
        assert server.authenticate(token) is None
        other, token = operator.issue(Role.ADMIN)
        assert server.authenticate(token) == other
        assert server.revoke(other.key_id)  # here: at once
        assert server.remembered(token) is None
        assert server.authenticate(token) is None


def test_concurrent_revocations_succeed_once(store_url: DatabaseURL) -> None:
    with ExitStack() as stack:
        stores = [_store(store_url, stack) for _ in range(6)]
        for _ in range(5):
            who, token = stores[0].issue(Role.ADMIN)
            barrier = threading.Barrier(len(stores))
            results: list[bool | BaseException] = []

            def revoke(
                store: ApiKeyStore,
                key_id: str = who.key_id,
                barrier: threading.Barrier = barrier,
                results: list[bool | BaseException] = results,
            ) -> None:
                barrier.wait()
                try:
                    results.append(store.revoke(key_id))
                except BaseException as error:
                    results.append(error)

            threads = [threading.Thread(target=revoke, args=(s,)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(results, key=repr) == [False] * (len(stores) - 1) + [True]
            assert all(store.authenticate(token) is None for store in stores)


@pytest.mark.parametrize(
    ("role", "subject", "message"),
    [
        ("root", None, "unknown role"),
        ("creator", None, "needs --subject"),
        ("channel", "bad/id", "needs --subject"),
        ("auditor", "alice", "drop --subject"),
        ("admin", "x", "drop --subject"),
        ("verifier", "", "drop --subject"),
        ("auditor", None, "at most 200"),
    ],
)
def test_grants_are_checked(role: str, subject: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_grant(role, subject, "x" * 201 if message == "at most 200" else "")
