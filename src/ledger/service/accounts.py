"""The accounts a command acts for (the rules are the domain's,
:mod:`ledger.domain.account`; this loads and adds)."""

from __future__ import annotations

from datetime import datetime

from ledger.domain.account import Account
from ledger.domain.ids import account_id_for
from ledger.service.unit_of_work import UnitOfWork


class Acting:
    """An act of ``channel`` for ``account``: checked when made, before the
    command changes anything (a refused command must leave a batch's
    aggregates untouched), and the account opened by :meth:`open_if_new`
    once every check has passed."""

    __slots__ = ("account", "account_id", "channel", "found")

    def __init__(self, uow: UnitOfWork, account: str, channel: str) -> None:
        self.account, self.channel = account, channel
        self.account_id = account_id_for(account)  # (derived once: a sale's hot path)
        self.found = uow.get_or_assume_new(Account, self.account_id)
        if self.found is not None:
            self.found.check_served_by(channel)

    def open_if_new(self, uow: UnitOfWork, now: datetime) -> None:
        """Open the account, served by the channel, if neither the ledger
        nor this unit of work knows it yet."""
        if self.found is None and uow.seen(self.account_id) is None:
            self.found = Account.open(self.account, self.channel, now)
            uow.add(self.found)
