"""Idempotency: the record of a command's first answer, keyed by its
client-supplied key.

A command's effects and its record are saved in one transaction. The
record's id is derived from (scope, key), so a second record for the same key
cannot be stored: a concurrent duplicate loses the race, retries, finds the
record, and returns the first answer without writing anything.

What counts as "the same request" is ``request_hash``: SHA-256 of the
canonical encoding of ``{"command": name, "args": {...}}``. Same key and same
hash returns the recorded result; same key and another hash is
:class:`~ledger.domain.errors.IdempotencyKeyReusedError`. Commands that a
rule refuses (sold out, not the holder...) write nothing -- no record either
-- so a retry with the same key is evaluated afresh, as Stripe does for
requests that fail validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain import canonical, limits
from ledger.domain.errors import IdempotencyKeyReusedError, InvalidInputError
from ledger.domain.ids import command_id_for
from ledger.domain.model import Aggregate, Created


def check_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= limits.IDEMPOTENCY_KEY_CHARS_MAX:
        raise InvalidInputError(
            "idempotency_key", f"must be 1 to {limits.IDEMPOTENCY_KEY_CHARS_MAX} characters"
        )
    if not key.isprintable():
        raise InvalidInputError("idempotency_key", "must be printable")
    return key


def request_hash(command: str, args: dict[str, Any]) -> str:
    return canonical.sha256_hex(canonical.encode({"command": command, "args": args}))


class CommandRecord(Aggregate):
    scope: str
    key: str
    command: str
    request_hash: str
    result: dict[str, Any]

    @classmethod
    def record(
        cls,
        *,
        scope: str,
        key: str,
        command: str,
        request_hash: str,
        result: dict[str, Any],
        now: datetime,
    ) -> CommandRecord:
        return cls._create(
            cls.Recorded,
            command_id_for(scope, key),
            now,
            scope=scope,
            key=key,
            command=command,
            request_hash=request_hash,
            result=result,
        )

    def answer(self, command: str, request_hash: str) -> dict[str, Any]:
        """The first answer, if this is the same request; else a conflict."""
        if self.command != command or self.request_hash != request_hash:
            raise IdempotencyKeyReusedError(self.key)
        return self.result

    @dataclass(frozen=True)
    class Recorded(Created):
        TYPE = "command.recorded"
        scope: str
        key: str
        command: str
        request_hash: str
        result: dict[str, Any]

        def apply(self, aggregate: CommandRecord) -> None:
            aggregate.scope = self.scope
            aggregate.key = self.key
            aggregate.command = self.command
            aggregate.request_hash = self.request_hash
            aggregate.result = self.result


CommandRecord.Recorded.AGGREGATE = CommandRecord
