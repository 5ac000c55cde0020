"""Who acts: the ``recorded_by`` member of an event's record (docs/format.md
section 2).

Every command names who did it, in the hashed bytes of each event it
records: an API key (its id, role and subject -- never the secret) with the
request id, the server itself (a timer: hold expiry sweeps), or an operator
at the command line. The actor of the command being decided is a context
variable of the domain: :meth:`~ledger.domain.model.Aggregate._create` and
``_trigger`` stamp it on every event they make, of whatever type. Events made
with no actor set carry no ``recorded_by`` (so every event written before
the member existed keeps its bytes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

KEY_ROLES = frozenset({"admin", "creator", "channel", "auditor"})  # with a key_id
SELF_ROLES = frozenset({"server", "operator"})  # without one
UNSCOPED_ROLES = frozenset({"admin", "auditor"})  # keys acting for no one in particular
ROLES = KEY_ROLES | SELF_ROLES
KEY_ID = re.compile(r"[0-9a-f]{12}")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}")
SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
DEFAULT_SERVER_NAME = "ledger"
OPERATOR_SUBJECT = "cli"


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Actor:
    """Who acts: ``key_id`` (API keys only), ``request_id``, ``role`` and
    ``subject`` (the creator or channel a key acts for, the server's name,
    ``cli``; None only for an unscoped key)."""

    role: str
    request_id: str
    subject: str | None = None
    key_id: str | None = None
    member: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        member = self._as_member()
        problem = actor_problem(member)
        if problem is not None:
            raise ValueError(f"recorded_by: {problem}")
        object.__setattr__(self, "member", member)

    def _as_member(self) -> dict[str, Any]:
        member: dict[str, Any] = {
            "request_id": self.request_id,
            "role": self.role,
            "subject": self.subject,
        }
        if self.key_id is not None:
            member["key_id"] = self.key_id
        return member

    @classmethod
    def of_key(cls, key_id: str, role: str, subject: str | None, request_id: str) -> Actor:
        return cls(role, request_id, subject, key_id)

    @classmethod
    def server(cls, name: str = DEFAULT_SERVER_NAME, request_id: str | None = None) -> Actor:
        """The server's own actions; a request id of their own per run."""
        return cls("server", request_id or new_request_id(), name)

    @classmethod
    def operator(cls, request_id: str | None = None) -> Actor:
        """A command run at the command line, straight on a store."""
        return cls("operator", request_id or new_request_id(), OPERATOR_SUBJECT)

    @classmethod
    def from_member(cls, member: object) -> Actor:
        """The actor a stored ``recorded_by`` names (``ValueError`` if malformed).
        (Remembered: the events of a command, and of a replay, share theirs.)"""
        if not isinstance(member, dict):
            raise ValueError("recorded_by: is not an object")
        try:
            key = (member["role"], member["request_id"], member["subject"], member.get("key_id"))
        except KeyError as missing:
            raise ValueError(f"recorded_by: has no {missing}") from None
        try:
            found = _READ.get(key)
        except TypeError:  # a member that is no string: unhashable
            raise ValueError("recorded_by: " + (actor_problem(member) or "malformed")) from None
        if found is None or found.member != member:
            found = cls(*key)
            if found.member != member:
                raise ValueError("recorded_by: " + (actor_problem(member) or "other members"))
            if len(_READ) > 4096:
                _READ.clear()
            _READ[key] = found
        return found


def actor_problem(member: object) -> str | None:
    """What is wrong with a ``recorded_by`` member, or None."""
    if not isinstance(member, dict):
        return "is not an object"
    role = member.get("role")
    keyed = role in KEY_ROLES
    expected = _KEYED_MEMBERS if keyed else _SELF_MEMBERS
    if role not in ROLES:
        return f"role {role!r} is not one of {', '.join(sorted(ROLES))}"
    if set(member) != expected:
        found, wanted = ", ".join(sorted(member)), ", ".join(sorted(expected))
        return f"members are {found}; a {role} actor has {wanted}"
    request_id = member["request_id"]
    if not (isinstance(request_id, str) and REQUEST_ID.fullmatch(request_id)):
        return "request_id is not 1-128 of A-Z a-z 0-9 . _ : + / = @ -"
    if keyed and not (isinstance(member["key_id"], str) and KEY_ID.fullmatch(member["key_id"])):
        return "key_id is not 12 lowercase hex digits"
    subject = member["subject"]
    if role in UNSCOPED_ROLES:
        return None if subject is None else f"subject of an {role} is not null"
    if not (isinstance(subject, str) and SUBJECT.fullmatch(subject)):
        return "subject is not an identifier (1-128 of A-Z a-z 0-9 _.:@-, starting alphanumeric)"
    return None


_KEYED_MEMBERS = frozenset({"key_id", "request_id", "role", "subject"})
_SELF_MEMBERS = frozenset({"request_id", "role", "subject"})
_READ: dict[tuple[str, str, str | None, str | None], Actor] = {}
_ACTOR: ContextVar[Actor | None] = ContextVar("ledger_actor", default=None)


def current_actor() -> Actor | None:
    """Who acts now (None: no one said; events then carry no ``recorded_by``)."""
    return _ACTOR.get()


def set_actor(actor: Actor | None) -> Token[Actor | None]:
    """Make ``actor`` the one acting in this context (undo with :func:`reset_actor`)."""
    return _ACTOR.set(actor)


def reset_actor(token: Token[Actor | None]) -> None:
    _ACTOR.reset(token)


@contextmanager
def acting(actor: Actor | None) -> Iterator[Actor | None]:
    """``actor`` acts within the block."""
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)
