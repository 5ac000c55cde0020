"""API keys as the ledger knows them: issued to a role (and a subject), and
revoked -- so that an auditor can check, from the log alone, that every
event ``recorded_by`` a key was recorded while the key was live, under the
role and subject it was issued with (docs/format.md section 8).

Only the key id (the 12 hex digits after ``lk_``) is recorded: never the
secret, nor its hash. The secret's hash lives in the key table beside the
events (:mod:`ledger.store.apikeys`), which is what authenticates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ledger.domain import validate
from ledger.domain.errors import ConflictError, InvalidInputError
from ledger.domain.ids import apikey_id_for
from ledger.domain.model import Aggregate, Created, Event

ROLES = ("admin", "creator", "channel", "auditor", "verifier")
SCOPED = frozenset({"creator", "channel"})  # roles that act for one creator or channel
LABEL_CHARS_MAX = 200
_KEY_ID = re.compile(r"[0-9a-f]{12}")


class ApiKeyRevokedError(ConflictError):
    code = "api-key-revoked"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} is already revoked")


def check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise InvalidInputError("key_id", "must be 12 lowercase hex digits")
    return key_id


class ApiKey(Aggregate):
    key_id: str
    role: str
    subject: str | None
    label: str
    revoked: bool

    @classmethod
    def issue(
        cls, key_id: str, role: str, subject: str | None, label: str, now: datetime
    ) -> ApiKey:
        check_key_id(key_id)
        if role not in ROLES:
            raise InvalidInputError("role", f"must be one of {', '.join(ROLES)}")
        if role in SCOPED:
            subject = validate.identifier(subject, field="subject")
        elif subject is not None:
            raise InvalidInputError("subject", f"a {role} key acts for no one in particular")
        if not isinstance(label, str) or len(label) > LABEL_CHARS_MAX:
            raise InvalidInputError("label", f"must be a string of at most {LABEL_CHARS_MAX}")
        if any(ord(ch) < 0x20 for ch in label):
            raise InvalidInputError("label", "must not contain control characters")
        return cls._create(
            cls.Issued,
            apikey_id_for(key_id),
            now,
            key_id=key_id,
            role=role,
            subject=subject,
            label=label,
        )

    def revoke(self, now: datetime) -> None:
        if self.revoked:
            raise ApiKeyRevokedError(self.key_id)
        self._trigger(self.Revoked, now, key_id=self.key_id)

    @dataclass(frozen=True)
    class Issued(Created):
        TYPE = "apikey.issued"
        key_id: str
        role: str
        subject: str | None
        label: str

        def apply(self, aggregate: ApiKey) -> None:
            aggregate.key_id = self.key_id
            aggregate.role = self.role
            aggregate.subject = self.subject
            aggregate.label = self.label
            aggregate.revoked = False

    @dataclass(frozen=True)
    class Revoked(Event):
        TYPE = "apikey.revoked"
        key_id: str

        def apply(self, aggregate: ApiKey) -> None:
            aggregate.revoked = True


ApiKey.Issued.AGGREGATE = ApiKey
