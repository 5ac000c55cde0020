"""Accounts: the people who hold units, and the channels that serve them.

An account is named by the id the channel that onboards it gives it (a
buyer's id, as every event names holders). That channel *serves* it; other
channels come to serve it only with the holder's consent (a unit taken to
them, ``docs/architecture.md`` "Holders and authority"). A channel acts --
sells to, resells from, refunds, delivers a code to, holds a place in a
waitlist for -- only for accounts it serves, and only on units held
through it (their *custody*, kept on the unit).

Opening is implicit: the first act of a channel for an id the ledger does
not know opens the account, in the same transaction (``account.opened``),
served by that channel. A second channel naming the same id is refused
(:class:`~ledger.domain.errors.NotServedError`), never merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.domain import validate
from ledger.domain.consent import check_public_key, unb64url
from ledger.domain.errors import KeyNotFoundError, NotServedError
from ledger.domain.ids import account_id_for
from ledger.domain.model import Aggregate, Created, Event


class Account(Aggregate):
    account: str
    channels: list[str]  # the channels that serve it, in the order they came
    keys: dict[str, str]  # the holder's public keys in force: key id -> base64url

    @classmethod
    def open(cls, account: str, channel: str, now: datetime) -> Account:
        account = validate.identifier(account, field="account")
        return cls._create(
            cls.Opened, account_id_for(account), now, account=account, channel=channel
        )

    def check_served_by(self, channel: str) -> None:
        if channel not in self.channels:
            raise NotServedError(self.account, channel, self.channels)

    def link(self, channel: str, *, consent: str, unit_id: str, now: datetime) -> None:
        """``channel`` serves this account from now on (the holder took
        ``unit_id`` to it, with ``consent``: a hand-off, or the holder's signed
        authorization, :mod:`ledger.domain.consent`)."""
        if channel in self.channels:
            return
        self._trigger(Account.Linked, now, channel=channel, consent=consent, unit_id=unit_id)

    def register_key(self, public_key: str, *, channel: str, now: datetime) -> str:
        """Register the holder's Ed25519 public key (base64url), through a
        channel that serves the account; its id. Registering a key in force
        again records nothing."""
        self.check_served_by(channel)
        key_id, _ = check_public_key(public_key)
        if key_id not in self.keys:
            self._trigger(
                Account.KeyRegistered, now, key_id=key_id, public_key=public_key, channel=channel
            )
        return key_id

    def revoke_key(self, key_id: str, *, channel: str, now: datetime) -> None:
        self.check_served_by(channel)
        if key_id not in self.keys:
            raise KeyNotFoundError(self.account, key_id)
        self._trigger(Account.KeyRevoked, now, key_id=key_id, channel=channel)

    def public_key(self, key_id: str) -> bytes | None:
        """The raw key in force under ``key_id`` (None: none)."""
        text = self.keys.get(key_id)
        return None if text is None else unb64url(text, field="public_key")

    @dataclass(frozen=True)
    class Opened(Created):
        TYPE = "account.opened"
        account: str
        channel: str

        def apply(self, aggregate: Account) -> None:
            aggregate.account = self.account
            aggregate.channels = [self.channel]
            aggregate.keys = {}

    @dataclass(frozen=True)
    class Linked(Event):
        TYPE = "account.linked"
        channel: str
        consent: str
        unit_id: str

        def apply(self, aggregate: Account) -> None:
            aggregate.channels.append(self.channel)

    @dataclass(frozen=True)
    class KeyRegistered(Event):
        TYPE = "account.key-registered"
        key_id: str
        public_key: str
        channel: str

        def apply(self, aggregate: Account) -> None:
            aggregate.keys[self.key_id] = self.public_key

    @dataclass(frozen=True)
    class KeyRevoked(Event):
        TYPE = "account.key-revoked"
        key_id: str
        channel: str

        def apply(self, aggregate: Account) -> None:
            del aggregate.keys[self.key_id]


Account.Opened.AGGREGATE = Account
