"""Use cases, codes: redemption codes: imports, delivery to the holder, redemption, counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from ledger.domain import canonical, validate
from ledger.domain.code import Code, check_code, code_list
from ledger.domain.code import code_range as code_range_of
from ledger.domain.code_import import check_batch_repeats, check_coded
from ledger.domain.command import check_key
from ledger.domain.edition import edition
from ledger.domain.errors import (
    CodeNotFoundError,
    CodeStateError,
    DuplicateCodeError,
    InvalidInputError,
    InvariantError,
    NotHolderError,
    UnitNotFoundError,
    UnitNotHeldError,
)
from ledger.domain.ids import (
    code_id_for,
    command_id_for,
    stock_id_for,
)
from ledger.domain.model import Aggregate, format_timestamp
from ledger.domain.unit import Unit
from ledger.service.answers import (
    CodeDelivered,
    CodeRedeemed,
    CodesImported,
)
from ledger.service.cases.core import LedgerCore, _uuid
from ledger.service.runner import StaleReadError as _StaleReadError
from ledger.service.unit_of_work import UnitOfWork

A = TypeVar("A", bound=Aggregate)


class Codes(LedgerCore):
    """Redemption codes: imports, delivery to the holder, redemption, counts."""

    # ------------------------------------------------------------------
    # Redemption codes
    # ------------------------------------------------------------------
    def import_codes(
        self,
        good_id: UUID | str,
        tier: str,
        *,
        codes: list[str] | None = None,
        code_range: Mapping[str, Any] | None = None,
        idempotency_key: str,
        scope: str = "",
    ) -> CodesImported:
        """Add a batch of codes to a tier of a ``redemption-code`` good: a list
        of codes, or a consecutive range ``{prefix, width, start, end}``.

        The codes are sealed into the vault first (a repeat is harmless), then
        one transaction records each code's ``code.imported`` -- the code's own
        aggregate, so a code imported before is refused by the store itself --
        and the tier's ``stock.codes-imported``. Neither the events nor the
        idempotency record hold a code's text: only refs (keyed hashes)."""
        good_uuid = _uuid(good_id, "good_id")
        texts = _batch_texts(codes, code_range)
        refs = self._vault_call(lambda: self.vault.refs(texts))
        check_batch_repeats(refs)
        check_coded(self.good(good_uuid), tier)
        args = {
            "good_id": str(good_uuid),
            "tier": tier,
            "count": len(refs),
            "refs_sha256": canonical.sha256_hex("".join(refs).encode()),
        }
        batch_id = str(command_id_for(scope, check_key(idempotency_key)))
        self._vault_call(lambda: self.vault.stash(list(zip(refs, texts, strict=True))))

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            for position, ref in enumerate(refs):
                if uow.get_or_assume_new(Code, code_id_for(ref)) is not None:
                    raise DuplicateCodeError(position, "imported before")
            for ref in refs:  # the codes' events first, then the tier's
                uow.add(
                    Code.import_(
                        ref=ref, good_id=str(good_uuid), tier=tier, batch_id=batch_id, now=now
                    )
                )
            stock = self._stock_in(uow, good_uuid, tier)
            stock.import_codes(batch_id=batch_id, refs=refs, now=now)
            return {
                "batch_id": batch_id,
                "good_id": str(good_uuid),
                "tier": tier,
                "imported": len(refs),
                "codes_imported": stock.codes_imported,
                "codes_available": stock.codes_available,
                "imported_at": format_timestamp(now),
            }

        stock_key = stock_id_for(good_uuid, tier)
        return self._runner.run(
            "import-codes", args, idempotency_key, scope, stock_key, decide, CodesImported.read
        )

    def deliver_code(
        self,
        unit_id: UUID | str,
        *,
        holder: str,
        idempotency_key: str,
        scope: str = "",
        channel: str | None = None,
    ) -> CodeDelivered:
        """Reveal a unit's code to its current holder. The first delivery is
        recorded (``code.delivered``); asking again answers the same code and
        records nothing. With ``channel``, only for a unit held through that
        channel (its custody).

        The code's text is added to the answer after the command, from the
        vault: it is never in the idempotency record."""
        unit_uuid = _uuid(unit_id, "unit_id")
        holder = validate.identifier(holder, field="holder")
        args = {"unit_id": str(unit_uuid), "holder": holder}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            unit = uow.get(Unit, unit_uuid)
            if unit is None:
                raise UnitNotFoundError(unit_uuid)
            if unit.holder is None:
                raise UnitNotHeldError(unit_uuid)
            if unit.holder != holder:
                raise NotHolderError(unit_uuid, holder)
            if channel is not None:
                unit.check_custody(channel)  # only the channel it is held through
            if unit.code is None:
                raise CodeStateError(f"unit {unit.id} carries no redemption code")
            code = self._code_in(uow, unit.code)
            if code.unit_id != str(unit.id):
                raise _StaleReadError  # the unit was refunded and sold again meanwhile
            first = code.deliver(unit_id=str(unit.id), holder=holder, now=now)
            return {
                "unit_id": str(unit.id),
                "good_id": unit.good_id,
                "tier": unit.tier,
                "serial": unit.serial,
                "edition": edition(unit.serial, self.good(unit.good_id).edition_size(unit.tier)),
                "holder": holder,
                "code_ref": code.ref,
                "state": code.state,
                "first_delivery": first,
                "delivered_at": code.delivered_at,
            }

        answer = self._runner.run(
            "deliver-code", args, idempotency_key, scope, unit_uuid, decide, CodeDelivered.read
        )
        return answer.revealed(self._vault_call(lambda: self.vault.reveal(answer.code_ref)))

    def redeem_code(
        self,
        code: str,
        *,
        redeemer: str,
        idempotency_key: str,
        scope: str = "",
        creator: str | None = None,
    ) -> CodeRedeemed:
        """Redeem a delivered code, once. With ``creator``, only a code of that
        creator's goods (any other code is answered as unknown)."""
        text = check_code(code)
        redeemer = validate.identifier(redeemer, field="redeemer")
        ref = self._vault_call(lambda: self.vault.refs([text]))[0]
        args = {"ref": ref, "redeemer": redeemer}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            found = uow.get(Code, code_id_for(ref))
            if found is None:
                raise CodeNotFoundError()
            if creator is not None and creator not in {
                c.id for c in self.good(found.good_id).spec.creators
            }:
                raise CodeNotFoundError()
            found.redeem(redeemer=redeemer, now=now)
            return {
                "code_ref": ref,
                "unit_id": found.unit_id,
                "good_id": found.good_id,
                "tier": found.tier,
                "holder": found.holder,
                "redeemer": redeemer,
                "redeemed_at": format_timestamp(now),
            }

        return self._runner.run(
            "redeem-code", args, idempotency_key, scope, code_id_for(ref), decide, CodeRedeemed.read
        )

    def code_counts(self, good_id: UUID | str, tier: str) -> dict[str, Any]:
        """A tier's codes: imported, free (unbound and not lent to a hold), lent to holds."""
        stock = self.stock(good_id, tier)
        lent = sum(len(h.get("codes", ())) for h in stock.holds.values())
        return {
            "good_id": stock.good_id,
            "tier": stock.tier,
            "coded": stock.coded,
            "imported": stock.codes_imported,
            "available": stock.codes_available,
            "held": lent,
            "bound": stock.codes_imported - stock.codes_available - lent,
        }


def _batch_texts(codes: list[str] | None, code_range: Mapping[str, Any] | None) -> list[str]:
    """The codes of an import: a list, or a range -- exactly one of them."""
    if (codes is None) == (code_range is None):
        raise InvalidInputError("codes", "give either a list of codes or a range")
    if codes is not None:
        return code_list(codes)
    if code_range is None:
        raise InvariantError("code_range unset")
    if not isinstance(code_range, Mapping) or set(code_range) != {
        "prefix",
        "width",
        "start",
        "end",
    }:
        raise InvalidInputError("range", "must be {prefix, width, start, end}")
    return code_range_of(**code_range)
