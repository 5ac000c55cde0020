"""Use cases, holders: accounts, holders' keys, moving a unit to another
channel, and transfers without a price (the rules: ``domain.account``,
``domain.consent``, ``domain.unit``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.domain import validate
from ledger.domain.account import Account
from ledger.domain.command import check_key
from ledger.domain.consent import Authorization
from ledger.domain.errors import (
    AccountExistsError,
    AccountNotFoundError,
    InvalidInputError,
    NotHolderError,
    UnitNotFoundError,
)
from ledger.domain.ids import account_id_for, command_id_for
from ledger.domain.model import format_timestamp
from ledger.domain.unit import HAND_OFF, HOLDER_SIGNATURE, TRANSFER_KINDS, Unit
from ledger.service.accounts import Acting
from ledger.service.answers import AccountOpened, HolderKey, UnitMoved, UnitTransferred
from ledger.service.cases.core import LedgerCore, _uuid
from ledger.service.runner import StaleReadError
from ledger.service.unit_of_work import UnitOfWork


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The signature primitive the domain's consent rule is handed."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class Holders(LedgerCore):
    """Accounts and what their holders consent to."""

    def open_account(
        self, account: str, *, channel: str, idempotency_key: str, scope: str = ""
    ) -> AccountOpened:
        """Onboard ``account`` at ``channel``, which serves it (a channel's
        first sale to an unknown id does the same)."""
        account = validate.identifier(account, field="account")
        args = {"account": account, "channel": channel}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            via = self.channel(channel)
            found = uow.get(Account, account_id_for(account))
            if found is not None:
                found.check_served_by(via.channel)  # another channel's: 403
                raise AccountExistsError(account)
            uow.add(Account.open(account, via.channel, now))
            return {"account": account, "channel": via.channel, "opened_at": format_timestamp(now)}

        return self._runner.run(
            "open-account",
            args,
            idempotency_key,
            scope,
            account_id_for(account),
            decide,
            AccountOpened.read,
        )

    def register_holder_key(
        self,
        account: str,
        *,
        public_key: str,
        channel: str,
        idempotency_key: str,
        scope: str = "",
    ) -> HolderKey:
        """Register the holder's Ed25519 public key, through a channel that
        serves the account (it vouches the holder gave it)."""
        account = validate.identifier(account, field="account")
        args = {"account": account, "public_key": public_key, "channel": channel}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            found = self._account_in(uow, account)
            key_id = found.register_key(public_key, channel=channel, now=now)
            return _key_answer(account, key_id, "registered", now)

        return self._runner.run(
            "register-key",
            args,
            idempotency_key,
            scope,
            account_id_for(account),
            decide,
            HolderKey.read,
        )

    def revoke_holder_key(
        self, account: str, *, key_id: str, channel: str, idempotency_key: str, scope: str = ""
    ) -> HolderKey:
        account = validate.identifier(account, field="account")
        args = {"account": account, "key_id": key_id, "channel": channel}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            self._account_in(uow, account).revoke_key(key_id, channel=channel, now=now)
            return _key_answer(account, key_id, "revoked", now)

        return self._runner.run(
            "revoke-key",
            args,
            idempotency_key,
            scope,
            account_id_for(account),
            decide,
            HolderKey.read,
        )

    def move_unit(
        self,
        unit_id: UUID | str,
        *,
        holder: str,
        to_channel: str,
        channel: str,
        authorization: Any = None,
        idempotency_key: str,
        scope: str = "",
    ) -> UnitMoved:
        """Take a unit to ``to_channel``: a hand-off by the channel holding
        it (``channel``), or, with ``authorization``, the holder's signed
        consent presented by the new channel. The holder's account is
        served by the new channel from then on."""
        unit_uuid = _uuid(unit_id, "unit_id")
        holder = validate.identifier(holder, field="holder")
        signed = _presented(authorization, channel, to_channel)
        wire = None if signed is None else signed.wire
        args: dict[str, Any] = {
            "unit_id": str(unit_uuid),
            "holder": holder,
            "to_channel": to_channel,
        }
        args |= {"channel": channel, "authorization": wire}
        move_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            target = self.channel(to_channel)
            account = self._account_in(uow, holder, field="holder")
            unit = uow.get(Unit, unit_uuid)
            if unit is None:
                raise UnitNotFoundError(unit_uuid)
            if unit.holder != holder:
                raise NotHolderError(unit_uuid, holder)
            was = unit.custody
            self._check_consent(unit, account, signed, channel=channel, to=target.channel, now=now)
            consent = HAND_OFF if signed is None else HOLDER_SIGNATURE
            unit.move(
                move_id=move_id,
                to_channel=target.channel,
                consent=consent,
                authorization=wire,
                now=now,
            )
            # (The account was read first: its link precedes the move in the log.)
            account.link(target.channel, consent=consent, unit_id=str(unit_uuid), now=now)
            return {
                "move_id": move_id,
                "unit_id": str(unit_uuid),
                "holder": holder,
                **{"from_channel": was, "to_channel": target.channel, "consent": consent},
                "moved_at": format_timestamp(now),
            }

        return self._runner.run(
            "move-unit", args, idempotency_key, scope, unit_uuid, decide, UnitMoved.read
        )

    def transfer_unit(
        self,
        unit_id: UUID | str,
        *,
        giver: str,
        recipient: str,
        channel: str,
        kind: str = "gift",
        idempotency_key: str,
        scope: str = "",
    ) -> UnitTransferred:
        """Give a unit to another account without a price, through the
        channel holding it (which must serve the recipient, or opens the
        recipient's account). A gift owes no royalty: nothing was paid."""
        unit_uuid = _uuid(unit_id, "unit_id")
        giver = validate.identifier(giver, field="giver")
        recipient = validate.identifier(recipient, field="recipient")
        if kind not in TRANSFER_KINDS:
            raise InvalidInputError("kind", f"must be one of {', '.join(TRANSFER_KINDS)}")
        args = {
            "unit_id": str(unit_uuid),
            "giver": giver,
            "recipient": recipient,
            "channel": channel,
            "kind": kind,
        }
        transfer_id = str(command_id_for(scope, check_key(idempotency_key)))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            unit = uow.get(Unit, unit_uuid)
            if unit is None:
                raise UnitNotFoundError(unit_uuid)
            via = self.channel(channel)
            unit.check_transfer(giver, recipient, via.channel)
            acting = Acting(uow, recipient, via.channel)
            if unit.code:
                code = self._code_in(uow, unit.code)
                if code.unit_id != str(unit.id):
                    raise StaleReadError
                code.check_resale(str(unit.id))  # a revealed code stays with its holder
            acting.open_if_new(uow, now)
            unit.transfer(
                transfer_id=transfer_id,
                giver=giver,
                recipient=recipient,
                channel=via.channel,
                kind=kind,
                now=now,
            )
            return {**args, "transfer_id": transfer_id, "transferred_at": format_timestamp(now)}

        return self._runner.run(
            "transfer-unit",
            args,
            idempotency_key,
            scope,
            unit_uuid,
            decide,
            UnitTransferred.read,
        )

    def _check_consent(
        self,
        unit: Unit,
        account: Account,
        signed: Authorization | None,
        *,
        channel: str,
        to: str,
        now: datetime,
    ) -> None:
        """A hand-off is the holding channel's to make; a signed move, the
        holder's authorization's to allow."""
        if signed is None:
            unit.check_custody(channel)
            return
        signed.check(
            unit_id=str(unit.id),
            unit_version=unit.version,
            holder=unit.holder,
            to_channel=to,
            log=self.log_origin,
            public_key=account.public_key(signed.key_id),
            now=now,
            verify=ed25519_verify,
        )

    def account(self, account: str) -> Account:
        """An account as stored (404 if the ledger does not know it)."""
        account = validate.identifier(account, field="account")
        return self._load(Account, account_id_for(account), AccountNotFoundError(account))

    def _account_in(self, uow: UnitOfWork, account: str, field: str = "account") -> Account:
        found = uow.get(Account, account_id_for(account))
        if found is None:
            raise AccountNotFoundError(account, field)
        return found


def _presented(authorization: Any, channel: str, to_channel: str) -> Authorization | None:
    """A holder's authorization, checked for form, presented by the channel
    it lets take the unit (None: no authorization, a hand-off)."""
    if authorization is None:
        return None
    if channel != to_channel:
        raise InvalidInputError(
            "to_channel", "a holder's authorization is presented by the channel it names"
        )
    return Authorization.parse(authorization)


def _key_answer(account: str, key_id: str, state: str, now: datetime) -> dict[str, Any]:
    return {"account": account, "key_id": key_id, "state": state, "at": format_timestamp(now)}
