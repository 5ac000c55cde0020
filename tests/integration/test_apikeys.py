"""API keys on both backends: issued once, stored hashed, revoked at once."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.store.apikeys import ApiKeyStore, Role, check_grant, open_api_keys
from ledger.store.database import DatabaseURL


@pytest.fixture
def keys(store_url: DatabaseURL) -> ApiKeyStore:
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
        (who.key_id, "channel", "shop", "till 1")]
    assert listed[0]["revoked_at"] is not None
    assert "secret_hash" not in listed[0]


def test_the_secret_is_not_stored(keys: ApiKeyStore, store_url: DatabaseURL) -> None:
    _, token = keys.issue(Role.ADMIN)
    secret = token.rsplit("_", 1)[1]
    if store_url.backend == "sqlite":
        for path in Path(store_url.path).parent.glob(Path(store_url.path).name + "*"):
            assert secret.encode() not in path.read_bytes()
    else:
        with psycopg.connect(host=store_url.host, port=store_url.port, user=store_url.user,
                             dbname=store_url.dbname) as connection:
            rows = connection.execute(
                f'SELECT * FROM "{store_url.schema}".ledger_api_keys').fetchall()
        assert rows
        assert secret not in repr(rows)


@settings(max_examples=200)
@given(garbage=st.text(max_size=80) | st.from_regex(r"lk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}",
                                                     fullmatch=True))
def test_garbage_never_authenticates_nor_raises(garbage: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    url = DatabaseURL.parse(f"sqlite:///{tmp_path_factory.getbasetemp() / 'garbage.db'}")
    with open_api_keys(url, create=True) as store:
        assert store.authenticate(garbage) is None


@pytest.mark.parametrize(("role", "subject", "message"), [
    ("root", None, "unknown role"),
    ("creator", None, "needs --subject"),
    ("channel", "bad/id", "needs --subject"),
    ("auditor", "alice", "drop --subject"),
    ("admin", "x", "drop --subject"),
])
def test_grants_are_checked(role: str, subject: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_grant(role, subject)
