"""Use cases, API keys: their issue and revocation, recorded as events
(``apikey/<key_id>``: docs/format.md section 4) through the command path, so
each names who issued or revoked it (``recorded_by``) and the verifier can
hold every event a key records to the key's life (rule 8.12).

The key table (:mod:`ledger.store.apikeys`) is what authenticates; it calls
these (see :class:`~ledger.store.apikeys.ApiKeyStore`): the issue is recorded
*before* the key's row exists, the revocation *after* the row is revoked, so
no event can be recorded by a key the log does not show live.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.domain.apikey import ApiKey, check_key_id
from ledger.domain.errors import ConflictError, NotFoundError
from ledger.domain.ids import apikey_id_for
from ledger.service.cases.core import LedgerCore
from ledger.service.unit_of_work import UnitOfWork

SCOPE = "apikeys"  # the idempotency scope of key commands


class ApiKeyExistsError(ConflictError):
    code = "api-key-exists"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} is already issued")


class ApiKeyNotFoundError(NotFoundError):
    code = "api-key-not-found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key {key_id} was issued")


def _answer(answer: dict[str, Any], _replayed: bool) -> dict[str, Any]:
    return dict(answer)


class ApiKeys(LedgerCore):
    """API keys' issue and revocation, as events."""

    def record_key_issued(
        self, key_id: str, role: str, subject: str | None, label: str = ""
    ) -> dict[str, Any]:
        """Record ``apikey.issued`` (idempotent: the same key again replays)."""
        check_key_id(key_id)
        args = {"key_id": key_id, "role": role, "subject": subject, "label": label}

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            issued = ApiKey.issue(key_id, role, subject, label, now)
            if uow.get(ApiKey, issued.id) is not None:
                raise ApiKeyExistsError(key_id)
            uow.add(issued)
            return {"key_id": key_id, "role": role, "subject": subject}

        return self._runner.run(
            "issue-api-key", args, f"issue:{key_id}", SCOPE, None, decide, _answer
        )

    def record_key_revoked(self, key_id: str) -> dict[str, Any]:
        """Record ``apikey.revoked`` (idempotent: a retry replays, so a
        revocation whose event was lost is recorded by revoking again)."""
        check_key_id(key_id)

        def decide(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
            key = uow.get(ApiKey, apikey_id_for(key_id))
            if key is None:
                raise ApiKeyNotFoundError(key_id)
            key.revoke(now)
            return {"key_id": key_id, "revoked": True}

        return self._runner.run(
            "revoke-api-key", {"key_id": key_id}, f"revoke:{key_id}", SCOPE, None, decide, _answer
        )

    def issued_keys(self, key_ids: list[str]) -> set[str]:
        """Which of these keys have their ``apikey.issued`` recorded (one query)."""
        ids = {apikey_id_for(k): k for k in key_ids}
        return {ids[found] for found in self._store.existing(list(ids))}
