"""Who recorded each event: the record's optional ``recorded_by`` member
(``docs/format.md`` section 2) and the API keys it names (rule 8.12),
written from the spec alone.

The member's shape is part of the envelope: a malformed one is a
``bad-envelope`` finding (class chain). A well-formed one naming an API key
must name a key issued earlier in the log (``apikey.issued``), with that
key's role and subject, and not yet revoked (``apikey.revoked``):
``actor-unknown-key``, ``actor-mismatch``, ``actor-revoked-key`` (class
domain rule).
"""

from __future__ import annotations

import re
import sys

from ledger.verify.facts import Event, Facts, Flag, Payload

KEY_ROLES = frozenset({"admin", "creator", "channel", "auditor"})
SELF_ROLES = frozenset({"server", "operator"})
UNSCOPED = frozenset({"admin", "auditor"})
_SCOPED = frozenset({"creator", "channel"})
_KEYED = frozenset({"key_id", "request_id", "role", "subject"})
_SELF = frozenset({"request_id", "role", "subject"})
_KEY_ID = re.compile(r"[0-9a-f]{12}").fullmatch
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}").fullmatch
_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}").fullmatch
_SEEN: dict[tuple[object, ...], str | None] = {}  # a run's events share few actors


def actor_problem(member: object) -> str | None:
    """What is wrong with a ``recorded_by`` member (None: nothing)."""
    if type(member) is not dict:
        return "recorded_by is not an object"
    key = tuple(member.items())  # (in stored order: another order is only a miss)
    try:
        return _SEEN[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable member value: certainly wrong
        return _problem(member)
    problem = _problem(member)
    if len(_SEEN) > 4096:
        _SEEN.clear()
    _SEEN[key] = problem
    return problem


def _problem(member: dict[str, object]) -> str | None:
    role = member.get("role")
    if role not in KEY_ROLES and role not in SELF_ROLES:
        return f"recorded_by's role {str(role)[:40]!r} is not one of section 2's roles"
    expected = _KEYED if role in KEY_ROLES else _SELF
    if member.keys() != expected:
        return (
            f"recorded_by's members are {', '.join(sorted(member))}; "
            f"an actor of role {role} has {', '.join(sorted(expected))}"
        )
    request_id = member["request_id"]
    if type(request_id) is not str or not _REQUEST_ID(request_id):
        return "recorded_by's request_id is not 1-128 of A-Z a-z 0-9 . _ : + / = @ -"
    if role in KEY_ROLES:
        key_id = member["key_id"]
        if type(key_id) is not str or not _KEY_ID(key_id):
            return "recorded_by's key_id is not 12 lowercase hex digits"
    subject = member["subject"]
    if role in UNSCOPED:
        return None if subject is None else f"recorded_by's subject is not null for an {role}"
    if type(subject) is not str or not _SUBJECT(subject):
        return f"recorded_by's subject is not an identifier for a {role}"
    return None


class ActorRules:
    """Rule 8.12: an event recorded by an API key follows the key's
    ``apikey.issued`` (same role and subject) and precedes its ``apikey.revoked``."""

    def __init__(self, facts: Facts) -> None:
        self._flag: Flag = facts.flag
        self._facts = facts
        # key id -> (role, subject, revoked?)
        self._keys: dict[str, tuple[str, str | None, bool]] = {}

    def check(self, ev: Event, member: Payload) -> None:
        """An event whose well-formed ``recorded_by`` is ``member``."""
        key_id = member.get("key_id")
        if key_id is None:
            return
        key = self._keys.get(key_id)
        if key is None:
            self._flag(
                ev,
                "actor-unknown-key",
                f"recorded by API key {key_id}, which no earlier apikey.issued issues",
            )
            return
        role, subject, revoked = key
        if (member["role"], member["subject"]) != (role, subject):
            self._flag(
                ev,
                "actor-mismatch",
                f"recorded by API key {key_id} as {member['role']} {member['subject']!r}; "
                f"the key was issued to {role} {subject!r}",
                expected=f"{role} {subject}",
                actual=f"{member['role']} {member['subject']}",
            )
        if revoked:
            self._flag(
                ev, "actor-revoked-key", f"recorded by API key {key_id} after its apikey.revoked"
            )

    def on_issued(self, ev: Event, p: Payload) -> None:
        if not self._facts.check_own_id(ev, p):
            return
        role, subject = p["role"], p["subject"]
        if (role in _SCOPED) != (subject is not None):
            self._flag(
                ev,
                "bad-payload",
                f"a {role} key {'needs a subject' if role in _SCOPED else 'has no subject'}",
            )
        self._keys[sys.intern(p["key_id"])] = (role, subject, False)

    def on_revoked(self, ev: Event, p: Payload) -> None:
        if not self._facts.check_id(ev, "apikey", p["key_id"]):
            return
        key = self._keys.get(p["key_id"])
        if key is None:  # its issue was unreadable (already a finding)
            return
        if key[2]:
            self._flag(ev, "actor-revoked-key", f"API key {p['key_id']} is revoked twice")
        self._keys[p["key_id"]] = (key[0], key[1], True)
